import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { CRD_GROUP, CRD_KIND, CRD_NAME, CRD_VERSION } from './names';
import { crossFieldErrors } from './resolve';
import { DEFAULTS } from './spec-schema';
import {
  CRD_FILE,
  CROSS_FIELD_RULES,
  IMMUTABLE_FIELDS,
  NON_INCREASING_FIELDS,
  counterNamespaceCrd,
  counterNamespaceCrdYaml,
  type ValidationRule,
} from './crd';
import type { Equals } from './from-schema';
import type { Condition, CounterNamespaceSpec, CounterNamespaceStatus } from './types';
import { repoRoot } from './write-crd';

// A compile-time proof (npm test runs `tsc --noEmit` over the tests; jest itself only transpiles): the condition
// status derived from the schema is the three values Kubernetes defines. If either changes alone, typechecking fails.
const conditionStatusAgrees: Equals<Condition['status'], 'True' | 'False' | 'Unknown'> = true;

/** Every property, at every depth, made mandatory: a literal of this type must name each field exactly once. */
type Complete<T> = T extends (infer U)[] ? Complete<U>[] : T extends object ? { [K in keyof T]-?: Complete<T[K]> } : T;

// One value of each type with every field set (the compiler rejects a missing or an unknown field). Map keys are
// '*', array elements are walked once: the same notation schemaPaths uses for additionalProperties and items.
const fullSpec: Complete<CounterNamespaceSpec> = {
  counterType: 'Accurate',
  cassandra: {
    keyspace: 'ks',
    replication: { class: 'NetworkTopologyStrategy', replicationFactor: 1, dataCenters: { '*': 3 } },
  },
  eventStorage: {
    secondsPerBucket: 600,
    bucketsPerCounter: 4,
    acceptLimitSeconds: 5,
    maxFutureSkewSeconds: 5,
    retentionSeconds: 3600,
  },
  rollup: {
    schedule: '* * * * *',
    suspend: false,
    coalesceMs: 1,
    queues: 1,
    queueCapacity: 16,
    batchSize: 1,
    concurrency: 1,
    settleMarginMs: 0,
  },
  cache: { ttlSeconds: 1, keyPrefix: 'p', nearCacheSeconds: 0 },
  deletionPolicy: 'Delete',
};
const fullStatus: Complete<CounterNamespaceStatus> = {
  observedGeneration: 1,
  conditions: [
    {
      type: 'Ready',
      status: 'True',
      observedGeneration: 1,
      lastTransitionTime: '2026-01-01T00:00:00Z',
      reason: 'Reconciled',
      message: '',
    },
  ],
  keyspace: 'ks',
  createdKeyspace: 'ks',
  eventsTable: 'events',
  rollupsTable: 'rollups',
  configMapName: 'cm',
  cronJobName: 'cj',
};

interface SchemaNode {
  type?: string;
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  'x-kubernetes-validations'?: ValidationRule[];
  [keyword: string]: unknown;
}

/** Dotted paths of every field a schema declares: `a.b`, `map.*` for map values, `list[].x` for list elements. */
function schemaPaths(node: SchemaNode, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const p = `${prefix}${key}`;
    out.push(p, ...childPaths(child, p));
  }
  return out;
}
function childPaths(node: SchemaNode, p: string): string[] {
  if (node.properties) return schemaPaths(node, `${p}.`);
  if (typeof node.additionalProperties === 'object')
    return [`${p}.*`, ...childPaths(node.additionalProperties, `${p}.*`)];
  if (node.items) return [`${p}[]`, ...childPaths(node.items, `${p}[]`)];
  return [];
}

/** The same paths for a value. */
function valuePaths(value: object, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const p = `${prefix}${key}`;
    out.push(p, ...childValuePaths(child, p));
  }
  return out;
}
function childValuePaths(value: unknown, p: string): string[] {
  if (Array.isArray(value)) return [`${p}[]`, ...childValuePaths(value[0], `${p}[]`)];
  if (value !== null && typeof value === 'object') return valuePaths(value, `${p}.`);
  return [];
}

const committedYaml = fs.readFileSync(path.join(repoRoot(), CRD_FILE), 'utf8');
const committed = yaml.load(committedYaml) as {
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: Record<string, unknown>;
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: unknown;
      additionalPrinterColumns: { name: string; jsonPath: string }[];
      schema: { openAPIV3Schema: SchemaNode & { properties: { spec: SchemaNode; status: SchemaNode } } };
    }[];
  };
};
const version = committed.spec.versions[0]!;
const root = version.schema.openAPIV3Schema;
const specSchema = root.properties.spec;

function nodeAt(dotted: string): SchemaNode {
  let node = specSchema;
  for (const key of dotted.split('.')) node = node.properties![key]!;
  return node;
}

describe('the CounterNamespace CRD', () => {
  it(`is committed in ${CRD_FILE} exactly as the generator writes it (npm run gen:crd)`, () => {
    expect(committedYaml).toBe(counterNamespaceCrdYaml());
    expect(committedYaml.startsWith('# GENERATED')).toBe(true);
    expect(committed).toEqual(counterNamespaceCrd());
  });

  it('has the same spec fields as the TypeScript CounterNamespaceSpec, and the same status fields as its type', () => {
    expect(conditionStatusAgrees).toBe(true);
    expect(schemaPaths(specSchema).sort()).toEqual(valuePaths(fullSpec).sort());
    expect(schemaPaths(root.properties.status).sort()).toEqual(valuePaths(fullStatus).sort());
    // Spot checks, so the comparison above is not vacuous.
    expect(schemaPaths(specSchema)).toEqual(
      expect.arrayContaining(['cassandra.replication.dataCenters.*', 'rollup.settleMarginMs', 'deletionPolicy']),
    );
    expect(schemaPaths(root.properties.status)).toContain('conditions[].lastTransitionTime');
  });

  it('names, scope, version and the status subresource', () => {
    expect(committed.metadata.name).toBe(CRD_NAME);
    expect(committed.spec.group).toBe(CRD_GROUP);
    expect(committed.spec.scope).toBe('Namespaced');
    expect(committed.spec.names).toMatchObject({
      kind: CRD_KIND,
      plural: 'counternamespaces',
      singular: 'counternamespace',
      shortNames: ['cns'],
      categories: ['tally'],
    });
    expect(version).toMatchObject({ name: CRD_VERSION, served: true, storage: true, subresources: { status: {} } });
    expect(version.additionalPrinterColumns.map((c) => [c.name, c.jsonPath])).toEqual([
      ['Type', '.spec.counterType'],
      ['Keyspace', '.status.keyspace'],
      ['Ready', ".status.conditions[?(@.type=='Ready')].status"],
      ['Reason', ".status.conditions[?(@.type=='Ready')].reason"],
      ['Rollup', ".status.conditions[?(@.type=='RollupHealthy')].reason"],
      ['Age', '.metadata.creationTimestamp'],
    ]);
  });

  it('is structural: every node typed, no additionalProperties beside properties, no keyword Kubernetes lacks', () => {
    const problems: string[] = [];
    const visit = (node: SchemaNode, where: string) => {
      if (node.type === undefined) problems.push(`${where}: no type`);
      if (node.properties && node.additionalProperties !== undefined) problems.push(`${where}: both`);
      for (const k of ['propertyNames', 'const', 'oneOf', 'anyOf', 'allOf', 'not', '$ref', 'patternProperties']) {
        if (k in node) problems.push(`${where}: ${k}`);
      }
      for (const [key, child] of Object.entries(node.properties ?? {})) visit(child, `${where}.${key}`);
      if (typeof node.additionalProperties === 'object') visit(node.additionalProperties, `${where}.*`);
      if (node.items) visit(node.items, `${where}[]`);
    };
    visit(root, '');
    expect(problems).toEqual([]);
    expect(root.properties.status.properties!.conditions).toMatchObject({
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
      items: { required: expect.arrayContaining(['type', 'status']) },
    });
  });

  it('carries the defaults of spec-schema.ts', () => {
    expect(specSchema.default).toEqual({});
    expect(nodeAt('counterType').default).toBe(DEFAULTS.counterType);
    expect(nodeAt('cassandra.replication').default).toEqual(DEFAULTS.replication);
    expect(nodeAt('eventStorage.retentionSeconds').default).toBe(DEFAULTS.retentionSeconds);
    expect(nodeAt('deletionPolicy').default).toBe(DEFAULTS.deletionPolicy);
  });

  it('makes the immutable fields immutable with transition rules, checking optional ones from their parent', () => {
    const rulesAt = (dotted: string) => (nodeAt(dotted)['x-kubernetes-validations'] ?? []).map((r) => r.rule);
    expect(IMMUTABLE_FIELDS.map((f) => f.field).sort()).toEqual([
      'cassandra.keyspace',
      'cassandra.replication.class',
      'eventStorage.bucketsPerCounter',
      'eventStorage.secondsPerBucket',
    ]);
    expect(rulesAt('cassandra.replication.class')).toContain('self == oldSelf');
    expect(rulesAt('eventStorage.secondsPerBucket')).toContain('self == oldSelf');
    expect(rulesAt('eventStorage.bucketsPerCounter')).toContain('self == oldSelf');
    // keyspace has no default, so a rule on it would not run when it is added or removed.
    expect(rulesAt('cassandra.keyspace')).toEqual([]);
    // Beside the reserved-word rule (a cross-field rule, below).
    expect(nodeAt('cassandra')['x-kubernetes-validations']).toContainEqual(
      expect.objectContaining({
        rule: expect.stringContaining('has(self.keyspace) == has(oldSelf.keyspace)'),
        fieldPath: '.keyspace',
      }),
    );
    expect(nodeAt('cassandra')['x-kubernetes-validations']).toHaveLength(2);
  });

  it('lets the accept limit go down but not up, on the defaulted field itself, and leaves the settle margin free', () => {
    const rulesAt = (dotted: string) => nodeAt(dotted)['x-kubernetes-validations'] ?? [];
    expect(NON_INCREASING_FIELDS.map((f) => f.field)).toEqual(['eventStorage.acceptLimitSeconds']);
    // On the field, which is defaulted inside defaulted objects: the rule runs on every update, and removing the
    // field puts the default back, which the rule then compares like any other value.
    expect(nodeAt('eventStorage.acceptLimitSeconds').default).toBe(DEFAULTS.acceptLimitSeconds);
    expect(nodeAt('eventStorage').default).toEqual({});
    expect(rulesAt('eventStorage.acceptLimitSeconds')).toEqual([
      {
        rule: 'self <= oldSelf',
        message: expect.stringMatching(
          /^spec\.eventStorage\.acceptLimitSeconds cannot be raised: .*never be counted.*create a new CounterNamespace/,
        ),
      },
    ]);
    // A smaller settle margin moves later checkpoints only, never the accept window.
    expect(rulesAt('rollup.settleMarginMs')).toEqual([]);
  });

  it('says the cross-field rules of crossFieldErrors (resolve.ts) in CEL, one rule per error', () => {
    const base = (): CounterNamespaceSpec => ({
      counterType: 'Eventual',
      cassandra: { replication: { class: 'SimpleStrategy', replicationFactor: 1 } },
      eventStorage: { ...fullSpec.eventStorage, retentionSeconds: 86400 },
      rollup: fullSpec.rollup,
      cache: fullSpec.cache,
      deletionPolicy: 'Retain',
    });
    const violations: CounterNamespaceSpec[] = [
      { ...base(), cassandra: { ...base().cassandra, keyspace: 'table' } },
      { ...base(), cassandra: { replication: { class: 'SimpleStrategy', dataCenters: { dc1: 1 } } } },
      { ...base(), cassandra: { replication: { class: 'NetworkTopologyStrategy' } } },
      { ...base(), cassandra: { replication: { class: 'NetworkTopologyStrategy', replicationFactor: 1 } } },
      { ...base(), eventStorage: { ...base().eventStorage, secondsPerBucket: 7200, retentionSeconds: 3600 } },
    ];
    expect(crossFieldErrors(base())).toEqual([]);
    const tsErrors = violations.flatMap((spec) => crossFieldErrors(spec));
    const asCel = tsErrors.map((e) => {
      const field = e.field.split('.').pop()!;
      return { at: e.field.replace(/^spec\./, '').replace(/\.[^.]+$/, ''), field, message: `${field} ${e.message}` };
    });
    const ruleKeys = CROSS_FIELD_RULES.map(({ at, field, message }) => ({ at, field, message }));
    const key = (r: { at: string; field: string; message: string }) => `${r.at}|${r.field}|${r.message}`;
    expect([...new Set(asCel.map(key))].sort()).toEqual(ruleKeys.map(key).sort());
    // And each rule is in the CRD where it says.
    for (const { at, field, rule } of CROSS_FIELD_RULES) {
      expect(nodeAt(at)['x-kubernetes-validations']).toContainEqual(
        expect.objectContaining({ rule, fieldPath: `.${field}` }),
      );
    }
  });

  it('checks the object name is a DNS label and datacenter names against the spec pattern', () => {
    expect(root['x-kubernetes-validations']).toEqual([
      expect.objectContaining({ fieldPath: '.metadata.name', rule: expect.stringContaining('self.metadata.name') }),
    ]);
    expect(nodeAt('cassandra.replication.dataCenters')['x-kubernetes-validations']).toEqual([
      expect.objectContaining({ rule: expect.stringMatching(/^self\.all\(key, key\.matches\(/) }),
    ]);
  });
});
