import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as yaml from 'js-yaml';

// docs/helm.md's "Chart configuration reference" table must describe exactly the chart's values: one row per leaf key
// of helm/tally/values.schema.json, with the schema's type and values.yaml's default.

const repo = path.resolve(__dirname, '..');
const chart = path.join(repo, 'helm', 'tally');
const START = '<!-- values-reference:start -->';
const END = '<!-- values-reference:end -->';
/** The default cell of a key values.yaml does not set. */
const NO_DEFAULT = '(none)';

interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
}
interface Schema extends SchemaNode {
  definitions?: Record<string, SchemaNode>;
}

interface Leaf {
  key: string;
  type: string;
}

/** Follows local `#/definitions/...` references (the only kind the chart's schema uses). */
function resolve(schema: Schema, node: SchemaNode): SchemaNode {
  let current = node;
  for (let depth = 0; current.$ref !== undefined; depth++) {
    const match = /^#\/definitions\/([^/]+)$/.exec(current.$ref);
    const target = match ? schema.definitions?.[match[1]!] : undefined;
    if (!target || depth > 16) throw new Error(`cannot resolve $ref ${current.$ref}`);
    current = target;
  }
  return current;
}

function typeName(node: SchemaNode, key: string): string {
  if (node.type === undefined) throw new Error(`values.schema.json: ${key} has no type`);
  return Array.isArray(node.type) ? node.type.join(' or ') : node.type;
}

/** Every property that is not an object with its own `properties`, as a dotted path. */
function schemaLeaves(schema: Schema): Leaf[] {
  const leaves: Leaf[] = [];
  const walk = (node: SchemaNode, prefix: string): void => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const key = prefix ? `${prefix}.${name}` : name;
      const resolved = resolve(schema, child);
      if (resolved.properties) walk(resolved, key);
      else leaves.push({ key, type: typeName(resolved, key) });
    }
  };
  walk(resolve(schema, schema), '');
  return leaves;
}

interface Row {
  line: number;
  key: string;
  type: string;
  defaultCell: string;
  description: string;
}

/** Splits a markdown table row on the pipes that are not escaped. */
function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return inner.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
}

function inlineCode(cell: string, what: string, line: number): string {
  const match = /^`([^`]*)`$/.exec(cell);
  if (!match) throw new Error(`docs/helm.md line ${line}: the ${what} cell must be one inline code span, got: ${cell}`);
  return match[1]!;
}

function referenceRows(readme: string): Row[] {
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => l.trim() === START);
  const end = lines.findIndex((l) => l.trim() === END);
  if (start < 0 || end < 0 || end < start) throw new Error(`docs/helm.md needs ${START} ... ${END} around the table`);
  const table = lines
    .map((text, i) => ({ text, line: i + 1 }))
    .slice(start + 1, end)
    .filter((l) => l.text.trim().startsWith('|'));
  const [header, separator, ...body] = table;
  if (!header || !separator) throw new Error('docs/helm.md: no table between the values-reference markers');
  const columns = cells(header.text).map((c) => c.toLowerCase());
  if (columns.join() !== 'key,type,default,description') {
    throw new Error(`docs/helm.md line ${header.line}: the columns must be key, type, default, description`);
  }
  return body.map(({ text, line }) => {
    const row = cells(text);
    if (row.length !== 4) throw new Error(`docs/helm.md line ${line}: expected 4 cells, got ${row.length}`);
    const [key, type, defaultCell, description] = row as [string, string, string, string];
    return {
      line,
      key: inlineCode(key, 'key', line),
      type: inlineCode(type, 'type', line),
      defaultCell: defaultCell === NO_DEFAULT ? NO_DEFAULT : inlineCode(defaultCell, 'default', line),
      description,
    };
  });
}

function valueAt(values: unknown, key: string): unknown {
  let current = values;
  for (const part of key.split('.')) {
    if (current === null || typeof current !== 'object' || !(part in current)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

describe('the chart configuration reference in docs/helm.md', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(chart, 'values.schema.json'), 'utf8')) as Schema;
  const values = yaml.load(fs.readFileSync(path.join(chart, 'values.yaml'), 'utf8'));
  const rows = referenceRows(fs.readFileSync(path.join(repo, 'docs/helm.md'), 'utf8'));
  const leaves = schemaLeaves(schema);

  it('has one row per leaf key of values.schema.json', () => {
    const documented = rows.map((r) => r.key);
    const wanted = leaves.map((l) => l.key);
    const duplicated = documented.filter((k, i) => documented.indexOf(k) !== i);
    const missing = wanted.filter((k) => !documented.includes(k));
    const extra = documented.filter((k) => !wanted.includes(k));
    expect({ missing, extra, duplicated }).toEqual({ missing: [], extra: [], duplicated: [] });
  });

  it("gives each key the schema's type", () => {
    const types = new Map(leaves.map((l) => [l.key, l.type]));
    const wrong = rows
      .filter((r) => types.has(r.key) && types.get(r.key) !== r.type)
      .map((r) => `${r.key} (line ${r.line}): docs/helm.md says ${r.type}, the schema ${types.get(r.key)}`);
    expect(wrong).toEqual([]);
  });

  it("gives each key values.yaml's default, written as JSON", () => {
    const wrong: string[] = [];
    for (const r of rows) {
      const actual = valueAt(values, r.key);
      const expected = actual === undefined ? NO_DEFAULT : JSON.stringify(actual);
      if (r.defaultCell === NO_DEFAULT || actual === undefined) {
        if (r.defaultCell !== expected)
          wrong.push(`${r.key} (line ${r.line}): docs/helm.md says ${r.defaultCell}, values.yaml ${expected}`);
        continue;
      }
      let documented: unknown;
      try {
        documented = JSON.parse(r.defaultCell);
      } catch {
        wrong.push(`${r.key} (line ${r.line}): the default ${r.defaultCell} is not JSON`);
        continue;
      }
      if (!isDeepStrictEqual(documented, actual)) {
        wrong.push(`${r.key} (line ${r.line}): docs/helm.md says ${r.defaultCell}, values.yaml ${expected}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('describes every key', () => {
    expect(rows.filter((r) => r.description === '').map((r) => r.key)).toEqual([]);
  });

  it('finds the leaves the chart is known to have', () => {
    // Guards the walk itself: $ref'd objects are expanded, maps and arrays are leaves.
    const keys = leaves.map((l) => l.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        'operator.image.repository',
        'memcached.resources.requests',
        'operator.serviceAccount.name',
        'runtime.logLevel',
        'imagePullSecrets',
        'networkPolicy.allowedLabels',
      ]),
    );
    expect(keys).not.toContain('operator.image');
    expect(leaves.find((l) => l.key === 'runtime.logLevel')?.type).toBe('string');
  });
});
