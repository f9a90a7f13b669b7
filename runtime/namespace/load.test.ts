import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNamespaceDocuments } from './load';
import { readNamespaceFiles } from './file-source';

describe('loadNamespaceDocuments', () => {
  it('keeps good documents when another document in the same file is bad, and names file, document and field', () => {
    const text = [
      'apiVersion: tally.dev/v1alpha1\nkind: CounterNamespace\nmetadata: {name: good}\nspec: {counterType: Accurate}',
      'apiVersion: tally.dev/v1alpha1\nkind: CounterNamespace\nmetadata: {name: broken}\nspec: {eventStorage: {acceptLimitSeconds: 0}}',
      'apiVersion: v1\nkind: Secret\nmetadata: {name: unrelated}',
      'apiVersion: tally.dev/v1alpha1\nkind: CounterNamspace\nmetadata: {name: typo}',
    ].join('\n---\n');
    const docs = loadNamespaceDocuments(text, 'ns.yaml');
    expect(docs).toHaveLength(3);
    expect(docs[0]).toMatchObject({ ok: true, config: { name: 'good', counterType: 'Accurate' } });
    expect(docs[1]).toEqual({
      ok: false,
      source: 'ns.yaml (document 2)',
      error: 'ns.yaml (document 2) (broken): spec.eventStorage.acceptLimitSeconds: must be >= 1',
    });
    expect(docs[2]).toMatchObject({
      ok: false,
      error: expect.stringContaining('kind "CounterNamspace" is not CounterNamespace'),
    });
  });

  it('reports YAML syntax errors with the file name', () => {
    const [doc] = loadNamespaceDocuments('kind: [unclosed', 'bad.yaml');
    expect(doc).toMatchObject({ ok: false, error: expect.stringMatching(/^bad\.yaml: not valid YAML/) });
  });
});

describe('readNamespaceFiles', () => {
  it('reads every YAML file in a directory in name order and reports duplicate names', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-ns-'));
    try {
      const ns = (name: string, type: string) =>
        `apiVersion: tally.dev/v1alpha1\nkind: CounterNamespace\nmetadata: {name: ${name}}\nspec: {counterType: ${type}}\n`;
      fs.writeFileSync(path.join(dir, 'a.yaml'), ns('one', 'Eventual'));
      fs.writeFileSync(path.join(dir, 'b.yml'), ns('one', 'Accurate') + '---\n' + ns('two', 'BestEffort'));
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a namespace');
      const snap = readNamespaceFiles(dir);
      expect(snap.namespaces.map((c) => [c.name, c.counterType])).toEqual([
        ['one', 'Eventual'],
        ['two', 'BestEffort'],
      ]);
      expect(snap.errors).toEqual([
        expect.stringMatching(/b\.yml \(document 1\): namespace "one" is already defined by .*a\.yaml/),
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a durable namespace whose default keyspace (cut to 48 characters) meets another one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-ns-'));
    try {
      const long = 'a'.repeat(50);
      const ns = (name: string, type: string) =>
        `apiVersion: tally.dev/v1alpha1\nkind: CounterNamespace\nmetadata: {name: ${name}}\nspec: {counterType: ${type}}\n`;
      fs.writeFileSync(
        path.join(dir, 'a.yaml'),
        [ns(`${long}-one`, 'Eventual'), ns(`${long}-two`, 'Accurate'), ns(`${long}-three`, 'BestEffort')].join('---\n'),
      );
      const snap = readNamespaceFiles(dir);
      expect(snap.namespaces.map((c) => c.name)).toEqual([`${long}-one`, `${long}-three`]);
      expect(snap.errors).toEqual([
        expect.stringMatching(
          new RegExp(`namespace "${long}-two" would share table tally_a{42}\\.events with namespace "${long}-one"`),
        ),
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says so when the path does not exist', () => {
    expect(readNamespaceFiles('/nonexistent/tally').errors[0]).toMatch(/^\/nonexistent\/tally: cannot read/);
  });
});
