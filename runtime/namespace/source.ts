import type { NamespaceConfig } from '../../api/namespace-config';

/** Everything a source knows at one moment: the namespaces it holds and the documents it rejected. */
export interface NamespaceSnapshot {
  namespaces: NamespaceConfig[];
  /** One line per rejected document, naming where it came from and what is wrong. */
  errors: string[];
  /**
   * The Kubernetes namespace each namespace's CounterNamespace lives in, by name: where callers are authorized
   * (http/auth.ts). Absent for a resolved document served from a file.
   */
  homes?: Record<string, string>;
}

/** A namespace a source read, where from, and the Kubernetes namespace of its CounterNamespace if it has one. */
export interface LoadedNamespace {
  source: string;
  config: NamespaceConfig;
  home?: string;
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

/**
 * Keeps the first definition of each name (sources list documents in a stable order) and reports the others; so
 * too a durable namespace whose tables another one already uses (a long name's default keyspace is cut to 48
 * characters, so two names can meet there), which would mix their counters.
 */
export function dedupeByName(loaded: LoadedNamespace[]): NamespaceSnapshot {
  const seen = new Map<string, string>();
  const tables = new Map<string, string>();
  const namespaces: NamespaceConfig[] = [];
  const errors: string[] = [];
  const homes: Record<string, string> = {};
  for (const { source, config, home } of loaded) {
    const first = seen.get(config.name);
    if (first !== undefined) {
      errors.push(`${source}: namespace "${config.name}" is already defined by ${first}; ignoring this one`);
      continue;
    }
    const { keyspace, eventsTable, rollupsTable } = config.cassandra;
    const mine =
      config.counterType === 'BestEffort' ? [] : [`${keyspace}.${eventsTable}`, `${keyspace}.${rollupsTable}`];
    const shared = mine.find((t) => tables.has(t));
    if (shared !== undefined) {
      errors.push(
        `${source}: namespace "${config.name}" would share table ${shared} with ${tables.get(shared)}; ` +
          'set spec.cassandra.keyspace (or the table names) to keep their counters apart; ignoring this one',
      );
      continue;
    }
    seen.set(config.name, source);
    for (const t of mine) tables.set(t, `namespace "${config.name}" (${source})`);
    namespaces.push(config);
    if (home !== undefined) homes[config.name] = home;
  }
  return { namespaces, errors, homes };
}
