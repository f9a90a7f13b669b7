import type { NamespaceConfig } from './config';

/** Everything a source knows at one moment: the namespaces it holds and the documents it rejected. */
export interface NamespaceSnapshot {
  namespaces: NamespaceConfig[];
  /** One line per rejected document, naming where it came from and what is wrong. */
  errors: string[];
}

/**
 * Where namespace configurations come from: files (runtime alone, examples/) or the operator's ConfigMaps. A source
 * calls `onChange` with a full snapshot whenever what it holds may have changed.
 */
export interface NamespaceSource {
  readonly description: string;
  start(onChange: (snapshot: NamespaceSnapshot) => void): Promise<void>;
  stop(): Promise<void>;
}

/** Keeps the first definition of each name (sources list documents in a stable order) and reports the others. */
export function dedupeByName(loaded: { source: string; config: NamespaceConfig }[]): NamespaceSnapshot {
  const seen = new Map<string, string>();
  const namespaces: NamespaceConfig[] = [];
  const errors: string[] = [];
  for (const { source, config } of loaded) {
    const first = seen.get(config.name);
    if (first !== undefined) {
      errors.push(`${source}: namespace "${config.name}" is already defined by ${first}; ignoring this one`);
      continue;
    }
    seen.set(config.name, source);
    namespaces.push(config);
  }
  return { namespaces, errors };
}
