import * as fs from 'node:fs';
import * as path from 'node:path';
import { messageOf } from '../../lib/errors';
import { loadNamespaceDocuments } from './load';
import { dedupeByName, type LoadedNamespace, type NamespaceSnapshot, type NamespaceSource } from './source';

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** A file, or every YAML/JSON file directly in a directory (sorted by name). Throws when the target cannot be read. */
function namespaceFiles(target: string): string[] {
  return fs.statSync(target).isDirectory()
    ? fs
        .readdirSync(target)
        .filter((f) => EXTENSIONS.has(path.extname(f)))
        .sort()
        .map((f) => path.join(target, f))
    : [target];
}

/**
 * What the poll compares before reading anything: each file's path, inode, size and modification time (a ConfigMap
 * volume's symlink swap changes the inode). Reading and validating a thousand namespaces every poll would cost a
 * runtime several percent of a core while nothing changes.
 */
export function filesSignature(target: string): string {
  try {
    return namespaceFiles(target)
      .map((f) => {
        const st = fs.statSync(f);
        return `${f}\0${st.ino}\0${st.size}\0${st.mtimeMs}`;
      })
      .join('\n');
  } catch (err) {
    return `unreadable: ${messageOf(err)}`;
  }
}

/** Reads a file, or every YAML/JSON file directly in a directory (sorted by name), into a snapshot. */
export function readNamespaceFiles(target: string): NamespaceSnapshot {
  let files: string[];
  try {
    files = namespaceFiles(target);
  } catch (err) {
    return { namespaces: [], errors: [`${target}: cannot read: ${messageOf(err)}`] };
  }
  const loaded: LoadedNamespace[] = [];
  const errors: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      errors.push(`${file}: cannot read: ${messageOf(err)}`);
      continue;
    }
    for (const doc of loadNamespaceDocuments(text, file)) {
      if (doc.ok) loaded.push(doc);
      else errors.push(doc.error);
    }
  }
  const snapshot = dedupeByName(loaded);
  return { ...snapshot, errors: [...errors, ...snapshot.errors] };
}

/**
 * Namespaces from a file or directory, reloaded on change. fs.watch gives quick reloads; a slow poll catches what it
 * misses (editors that replace files, network file systems, ConfigMap volume symlink swaps).
 */
export class FileNamespaceSource implements NamespaceSource {
  private watcher: fs.FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private last = '';
  private signature = '';

  constructor(
    private readonly target: string,
    private readonly pollMs = 2000,
    private readonly read: (target: string) => NamespaceSnapshot = readNamespaceFiles,
  ) {}

  get description(): string {
    return `files at ${this.target}`;
  }

  start(onChange: (snapshot: NamespaceSnapshot) => void): Promise<void> {
    const reload = (): void => {
      this.signature = filesSignature(this.target);
      const snapshot = this.read(this.target);
      const fingerprint = JSON.stringify(snapshot);
      if (fingerprint === this.last) return;
      this.last = fingerprint;
      onChange(snapshot);
    };
    reload();
    try {
      this.watcher = fs.watch(this.target, () => {
        clearTimeout(this.debounce);
        this.debounce = setTimeout(reload, 100);
      });
      this.watcher.on('error', () => undefined);
    } catch {
      // Watching is an optimisation; the poll below still reloads.
    }
    // The poll reads the files only when their signature changed (the watcher reloads on any event regardless).
    this.poll = setInterval(() => {
      if (filesSignature(this.target) !== this.signature) reload();
    }, this.pollMs);
    this.poll.unref();
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.watcher?.close();
    clearInterval(this.poll);
    clearTimeout(this.debounce);
    return Promise.resolve();
  }
}
