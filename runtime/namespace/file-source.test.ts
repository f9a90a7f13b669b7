import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileNamespaceSource, filesSignature, readNamespaceFiles } from './file-source';
import type { NamespaceSnapshot } from './source';

const doc = (name: string, counterType = 'BestEffort'): string =>
  `apiVersion: tally.dev/v1alpha1\nkind: CounterNamespace\nmetadata: {name: ${name}}\nspec: {counterType: ${counterType}}\n`;

describe('FileNamespaceSource', () => {
  let dir: string;
  let source: FileNamespaceSource | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-ns-'));
  });
  afterEach(async () => {
    await source?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('polls without reading a file while nothing changed, and reloads when one does', async () => {
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, `ns-${i}.yaml`), doc(`ns-${i}`));
    const snapshots: NamespaceSnapshot[] = [];
    let reads = 0;
    const counted = (target: string): NamespaceSnapshot => {
      reads++;
      return readNamespaceFiles(target);
    };
    source = new FileNamespaceSource(dir, 20, counted);
    await source.start((s) => snapshots.push(s));
    expect(reads).toBe(1);
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]!.namespaces).toHaveLength(20);

    // Seven polls and more: the files are statted, never read.
    await sleep(150);
    expect(reads).toBe(1);

    fs.writeFileSync(path.join(dir, 'ns-3.yaml'), doc('ns-3', 'Eventual'));
    await sleep(300);
    expect(reads).toBeGreaterThan(1);
    expect(snapshots).toHaveLength(2);
    expect(snapshots[1]!.namespaces.find((n) => n.name === 'ns-3')?.counterType).toBe('Eventual');
  });

  it('changes the signature when a file is added, removed, rewritten or replaced, and not otherwise', () => {
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, doc('a'));
    const first = filesSignature(dir);
    expect(filesSignature(dir)).toBe(first);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a namespace file');
    expect(filesSignature(dir)).toBe(first);
    fs.writeFileSync(path.join(dir, 'b.yaml'), doc('b'));
    const added = filesSignature(dir);
    expect(added).not.toBe(first);
    // Replaced by a rename, as editors and ConfigMap volumes do: a new inode even with the same size and content.
    fs.writeFileSync(`${file}.tmp`, doc('a'));
    fs.renameSync(`${file}.tmp`, file);
    expect(filesSignature(dir)).not.toBe(added);
    fs.rmSync(path.join(dir, 'b.yaml'));
    expect(filesSignature(dir)).not.toBe(added);
    expect(filesSignature(path.join(dir, 'missing'))).toMatch(/^unreadable: /);
  });
});
