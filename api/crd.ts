import * as yaml from 'js-yaml';
import { CQL_RESERVED_WORDS, RESERVED_KEYSPACE_MESSAGE } from './cql-reserved';
import { NAMESPACE_NAME_PATTERN } from './namespace-config';
import { CRD_GROUP, CRD_KIND, CRD_NAME, CRD_PLURAL, CRD_SINGULAR, CRD_VERSION, LABELS, PART_OF } from './names';
import { counterNamespaceSpecSchema } from './spec-schema';
import { counterNamespaceStatusSchema } from './status-schema';

/**
 * The CounterNamespace CustomResourceDefinition, generated from the spec's JSON Schema
 * (./spec-schema.ts) and the status schema (./status-schema.ts). crds/ holds its YAML, written by
 * `npm run gen:crd`; a unit test fails when the two drift apart.
 */

export const CRD_SHORT_NAMES = ['cns'];
export const CRD_CATEGORIES = ['tally'];
/** Where the generated YAML lives, relative to the repository root. */
export const CRD_FILE = `crds/${CRD_NAME}.yaml`;

/** A CEL rule, as `x-kubernetes-validations` holds it. */
export interface ValidationRule {
  rule: string;
  message: string;
  /** Relative to where the rule sits; errors are reported at that field instead. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** Spec fields (dotted, below spec) that may not change after creation, and why. */
export const IMMUTABLE_FIELDS: readonly { field: string; why: string }[] = [
  { field: 'cassandra.keyspace', why: 'the counters stay in the keyspace they were created in' },
  {
    field: 'cassandra.replication.class',
    why: 'replication factors and datacenters may change, the strategy may not',
  },
  { field: 'eventStorage.secondsPerBucket', why: 'stored events are bucketed by it' },
  { field: 'eventStorage.bucketsPerCounter', why: 'stored events are spread over these buckets' },
];

/**
 * Spec fields that may be lowered but never raised after creation, and why. The accept limit: rollups checkpoint
 * counters up to now − acceptLimitSeconds − settleMarginMs, so a larger limit would accept events older than
 * checkpoints already written, and they would never be counted. (A smaller settle margin moves later checkpoints
 * only, never the accept window: it may change.)
 */
export const NON_INCREASING_FIELDS: readonly { field: string; why: string }[] = [
  {
    field: 'eventStorage.acceptLimitSeconds',
    why:
      'rollups have already checkpointed times a larger limit would accept again, and events there would never be ' +
      'counted (lowering it is fine); to accept older events, create a new CounterNamespace, with its own keyspace, ' +
      'with the larger limit',
  },
];

/**
 * The cross-field rules of `crossFieldErrors` in ./resolve.ts, in CEL: `at` is the object (dotted,
 * below spec) the rule sits on, `field` the property the error names. Each message is the field's name followed by
 * the message crossFieldErrors gives (a unit test holds them together).
 */
export const CROSS_FIELD_RULES: readonly (Omit<ValidationRule, 'fieldPath'> & { at: string; field: string })[] = [
  {
    at: 'cassandra',
    field: 'keyspace',
    // On the object, not the string: an error at .keyspace shows the readable message, not the list.
    rule: `!has(self.keyspace) || !(self.keyspace in [${CQL_RESERVED_WORDS.map(celString).join(', ')}])`,
    message: `keyspace ${RESERVED_KEYSPACE_MESSAGE}`,
  },
  {
    at: 'cassandra.replication',
    field: 'dataCenters',
    rule: "self.class != 'SimpleStrategy' || !has(self.dataCenters)",
    message: 'dataCenters is only for NetworkTopologyStrategy',
    reason: 'FieldValueForbidden',
  },
  {
    at: 'cassandra.replication',
    field: 'dataCenters',
    rule: "self.class != 'NetworkTopologyStrategy' || has(self.dataCenters)",
    message: 'dataCenters is required for NetworkTopologyStrategy',
    reason: 'FieldValueRequired',
  },
  {
    at: 'cassandra.replication',
    field: 'replicationFactor',
    rule: "self.class != 'NetworkTopologyStrategy' || !has(self.replicationFactor)",
    message: 'replicationFactor is only for SimpleStrategy (use dataCenters)',
    reason: 'FieldValueForbidden',
  },
  {
    at: 'eventStorage',
    field: 'retentionSeconds',
    // has(): the API server also checks the schema's default ({}) against the rule, before defaulting inside it.
    rule: '!has(self.retentionSeconds) || !has(self.secondsPerBucket) || self.retentionSeconds >= self.secondsPerBucket',
    message: 'retentionSeconds must be at least secondsPerBucket',
  },
];

/** The object's name is the counter API's namespace name, so it must be a DNS label, not just a DNS subdomain. */
export const NAME_RULE: ValidationRule = {
  rule: `self.metadata.name.matches(${celString(NAMESPACE_NAME_PATTERN)})`,
  fieldPath: '.metadata.name',
  message:
    'metadata.name must be a DNS label (at most 63 characters: a-z, 0-9 and -, starting and ending with a letter or digit), since it is the namespace name in the counter API',
};

export const PRINTER_COLUMNS = [
  { name: 'Type', type: 'string', jsonPath: '.spec.counterType', description: 'Counter type.' },
  { name: 'Keyspace', type: 'string', jsonPath: '.status.keyspace', description: 'Cassandra keyspace in use.' },
  {
    name: 'Ready',
    type: 'string',
    jsonPath: ".status.conditions[?(@.type=='Ready')].status",
    description: 'Whether the namespace is ready to count.',
  },
  {
    name: 'Reason',
    type: 'string',
    jsonPath: ".status.conditions[?(@.type=='Ready')].reason",
    description: 'Why it is (not) ready.',
  },
  {
    name: 'Rollup',
    type: 'string',
    jsonPath: ".status.conditions[?(@.type=='RollupHealthy')].reason",
    description: "Whether the sweeper CronJob's runs succeed (the RollupHealthy condition's reason).",
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

/**
 * The CustomResourceDefinition (apiextensions.k8s.io/v1) for CounterNamespace, as the API server's JSON.
 *
 * Send it as is (e.g. `ApiextensionsV1Api.patchCustomResourceDefinition({ name: CRD_NAME, body, fieldManager,
 * force: true }, setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply))`, or `kubectl apply --server-side`).
 * Never as a client-node `V1CustomResourceDefinition` (e.g. through `KubernetesObjectApi.patch`): client-node's model
 * spells enum, default and x-kubernetes-* as `_enum`, `_default`, `xKubernetesValidations`, ..., and its serializer
 * silently drops them, installing a CRD without defaults, enums or CEL rules.
 */
export function counterNamespaceCrd(): object {
  // Defaulted, so an object applied without a spec gets every default too, and transition rules below spec always
  // find their parents in both the old and the new object.
  const spec: Schema = { type: 'object', default: {}, ...structural(counterNamespaceSpecSchema, 'spec') };
  for (const { field, why } of IMMUTABLE_FIELDS) addImmutability(spec, field, why);
  for (const { field, why } of NON_INCREASING_FIELDS) addNonIncreasing(spec, field, why);
  for (const { at, field, ...rule } of CROSS_FIELD_RULES) {
    const node = schemaAt(spec, at);
    if (!node.properties?.[field]) throw new Error(`spec.${at} has no property ${field}`);
    addRule(node, { ...rule, fieldPath: `.${field}` });
  }

  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME, labels: { [LABELS.partOf]: PART_OF } },
    spec: {
      group: CRD_GROUP,
      scope: 'Namespaced',
      names: {
        kind: CRD_KIND,
        listKind: `${CRD_KIND}List`,
        plural: CRD_PLURAL,
        singular: CRD_SINGULAR,
        shortNames: CRD_SHORT_NAMES,
        categories: CRD_CATEGORIES,
      },
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'A counter namespace: a Cassandra keyspace with time-bucketed event and rollup tables, a rollup CronJob and cache settings, served by the Tally runtime.',
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                // Declared so the name rule below can report at metadata.name (fieldPath must name a declared field).
                metadata: { type: 'object', properties: { name: { type: 'string' } } },
                spec,
                status: structural(counterNamespaceStatusSchema, 'status'),
              },
              'x-kubernetes-validations': [NAME_RULE],
            },
          },
        },
      ],
    },
  };
}

/** The YAML of crds/, with the header that says where it comes from. */
export function counterNamespaceCrdYaml(): string {
  const header = [
    '# GENERATED by api/write-crd.ts from api/spec-schema.ts and api/status-schema.ts.',
    '# Do not edit: change the schemas and regenerate with `npm run gen:crd`.',
    '# Install or upgrade with `kubectl apply --server-side -f crds/`.',
  ];
  const body = yaml.dump(counterNamespaceCrd(), { lineWidth: -1, noRefs: true, quotingType: "'", sortKeys: false });
  return `${header.join('\n')}\n${body}`;
}

interface Schema {
  [keyword: string]: unknown;
  type?: string;
  default?: unknown;
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  propertyNames?: { pattern?: string };
  'x-kubernetes-validations'?: ValidationRule[];
}

/** The JSON Schema keywords a CRD's structural schema may carry (besides x-kubernetes-*). */
const ALLOWED_KEYWORDS = new Set([
  'type',
  'format',
  'description',
  'title',
  'default',
  'enum',
  'nullable',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minProperties',
  'maxProperties',
]);

/**
 * A copy of a JSON Schema that Kubernetes accepts as structural: `additionalProperties: false` goes where
 * `properties` are given (Kubernetes forbids the pair; it prunes unknown fields instead, and strict field validation
 * rejects them), `propertyNames` becomes a CEL rule, and any keyword Kubernetes does not know fails generation.
 */
function structural(source: object, path: string): Schema {
  const node = structuredClone(source) as Schema;
  for (const keyword of Object.keys(node)) {
    if (!ALLOWED_KEYWORDS.has(keyword) && !keyword.startsWith('x-kubernetes-') && keyword !== 'propertyNames') {
      throw new Error(`${path}: JSON Schema keyword ${keyword} cannot go into a CRD schema`);
    }
  }
  if (node.type === undefined) throw new Error(`${path}: a structural schema needs a type`);
  if (node.properties) {
    if (node.additionalProperties === false) delete node.additionalProperties;
    else if (node.additionalProperties !== undefined) {
      throw new Error(`${path}: properties and additionalProperties cannot be combined in a CRD schema`);
    }
    for (const [key, child] of Object.entries(node.properties))
      node.properties[key] = structural(child, `${path}.${key}`);
  }
  if (typeof node.additionalProperties === 'object') {
    node.additionalProperties = structural(node.additionalProperties, `${path}.*`);
  }
  if (node.items) node.items = structural(node.items, `${path}[]`);
  if (node.propertyNames) {
    const { pattern, ...rest } = node.propertyNames;
    if (pattern === undefined || Object.keys(rest).length > 0) {
      throw new Error(`${path}: only propertyNames.pattern can be turned into a CEL rule`);
    }
    delete node.propertyNames;
    addRule(node, { rule: `self.all(key, key.matches(${celString(pattern)}))`, message: `keys must match ${pattern}` });
  }
  return node;
}

/**
 * Makes a spec field immutable with a transition rule. A field that can be absent is checked from its parent, where
 * adding or removing it counts as a change too (a rule on the field itself would not run then).
 */
function addImmutability(spec: Schema, dotted: string, why: string): void {
  const { parent, key, field } = transitionTarget(spec, dotted);
  const message = `spec.${dotted} is immutable: ${why}`;
  if (alwaysPresent(parent, key)) {
    addRule(field, { rule: 'self == oldSelf', message });
  } else {
    addRule(parent, {
      rule: `has(self.${key}) == has(oldSelf.${key}) && (!has(self.${key}) || self.${key} == oldSelf.${key})`,
      message: `spec.${dotted} is immutable (it cannot be added, changed or removed after creation): ${why}`,
      fieldPath: `.${key}`,
    });
  }
}

/**
 * Lets a spec field go down but not up. The field must be defaulted (and so every object above it): then the rule
 * always runs, and removing the field, which puts the default back, counts as raising it when the default is larger.
 */
function addNonIncreasing(spec: Schema, dotted: string, why: string): void {
  const { parent, key, field } = transitionTarget(spec, dotted);
  if (!alwaysPresent(parent, key)) throw new Error(`spec.${dotted} may be absent; give it a default`);
  addRule(field, { rule: 'self <= oldSelf', message: `spec.${dotted} cannot be raised: ${why}` });
}

/**
 * The field a transition rule is about, its parent and its key. Transition rules only run when the value they sit on
 * exists in both the old and the new object, so every object above the field must be defaulted or required, or the
 * rule would silently be skipped whenever one of them is missing.
 */
function transitionTarget(spec: Schema, dotted: string): { parent: Schema; key: string; field: Schema } {
  const keys = dotted.split('.');
  const key = keys.pop()!;
  const parent = schemaAt(spec, keys.join('.'));
  const field = parent.properties?.[key];
  if (!field) throw new Error(`spec.${dotted} is not in the schema`);
  let node = spec;
  for (const k of keys) {
    if (!alwaysPresent(node, k)) throw new Error(`spec.${dotted}: spec.${k} may be absent; give it a default`);
    node = node.properties![k]!;
  }
  return { parent, key, field };
}

/** Whether the API server always fills in `key` of an existing `node` (it is required, or defaulted). */
function alwaysPresent(node: Schema, key: string): boolean {
  return (node.required ?? []).includes(key) || node.properties?.[key]?.default !== undefined;
}

function schemaAt(root: Schema, dotted: string): Schema {
  let node = root;
  for (const key of dotted.split('.').filter((k) => k !== '')) {
    const next = node.properties?.[key];
    if (!next) throw new Error(`no property ${dotted} in the schema`);
    node = next;
  }
  return node;
}

function addRule(node: Schema, rule: ValidationRule): void {
  node['x-kubernetes-validations'] = [...(node['x-kubernetes-validations'] ?? []), rule];
}

/** A CEL string literal (CEL's double-quoted strings take JSON's escapes). */
function celString(text: string): string {
  return JSON.stringify(text);
}
