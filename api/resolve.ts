import { CQL_RESERVED_WORDS, RESERVED_KEYSPACE_MESSAGE } from './cql-reserved';
import { CONFIG_API_VERSION, CONFIG_KIND, NAMESPACE_NAME_PATTERN, namespaceConfigSchema } from './namespace-config';
import type { NamespaceConfig, Replication } from './namespace-config';
import { counterNamespaceSpecSchema } from './spec-schema';
import type { CounterNamespaceSpec } from './types';
import { compileChecker, describeErrors, type FieldError } from './validate';

export interface CounterNamespaceManifest {
  apiVersion: string;
  kind: string;
  /** The name is checked when resolving: a CounterNamespace from the API and a parsed document both fit. */
  metadata: { name?: string; namespace?: string; uid?: string; generation?: number };
  spec?: unknown;
}

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly errors: FieldError[],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

const checkSpec = compileChecker(counterNamespaceSpecSchema, 'spec');
const checkConfig = compileChecker(namespaceConfigSchema, '');
const namePattern = new RegExp(NAMESPACE_NAME_PATTERN);

/** The keyspace a CounterNamespace gets when it names none: tally_<name>, with - as _, cut to Cassandra's 48. */
export function defaultKeyspace(name: string): string {
  return `tally_${name.replace(/[-.]/g, '_')}`.slice(0, 48);
}

/** Applies the schema's defaults to a spec (as the API server does) and checks it, including cross-field rules. */
export function defaultSpec(spec: unknown): { spec: CounterNamespaceSpec; errors: FieldError[] } {
  const copy: unknown = structuredClone(spec ?? {});
  const errors = checkSpec(copy);
  if (errors.length === 0) errors.push(...crossFieldErrors(copy as CounterNamespaceSpec));
  return { spec: copy as CounterNamespaceSpec, errors };
}

/** The rules a JSON Schema cannot say; the CRD says them again in CEL. */
export function crossFieldErrors(spec: CounterNamespaceSpec): FieldError[] {
  const errors: FieldError[] = [];
  const keyspace = spec.cassandra.keyspace;
  if (keyspace !== undefined && CQL_RESERVED_WORDS.includes(keyspace)) {
    errors.push({ field: 'spec.cassandra.keyspace', message: RESERVED_KEYSPACE_MESSAGE });
  }
  const r = spec.cassandra.replication;
  if (r.class === 'SimpleStrategy' && r.dataCenters !== undefined) {
    errors.push({ field: 'spec.cassandra.replication.dataCenters', message: 'is only for NetworkTopologyStrategy' });
  }
  if (r.class === 'NetworkTopologyStrategy' && r.dataCenters === undefined) {
    errors.push({
      field: 'spec.cassandra.replication.dataCenters',
      message: 'is required for NetworkTopologyStrategy',
    });
  }
  if (r.class === 'NetworkTopologyStrategy' && r.replicationFactor !== undefined) {
    errors.push({
      field: 'spec.cassandra.replication.replicationFactor',
      message: 'is only for SimpleStrategy (use dataCenters)',
    });
  }
  if (spec.eventStorage.retentionSeconds < spec.eventStorage.secondsPerBucket) {
    errors.push({ field: 'spec.eventStorage.retentionSeconds', message: 'must be at least secondsPerBucket' });
  }
  return errors;
}

function replicationOf(spec: CounterNamespaceSpec): Replication {
  const r = spec.cassandra.replication;
  return r.class === 'NetworkTopologyStrategy'
    ? { class: 'NetworkTopologyStrategy', dataCenters: { ...r.dataCenters } }
    : { class: 'SimpleStrategy', replicationFactor: r.replicationFactor ?? 1 };
}

/** Resolves a CounterNamespace (as applied, or as the API server returns it) into the runtime's configuration. */
export function resolveCounterNamespace(manifest: CounterNamespaceManifest): NamespaceConfig {
  const name = manifest.metadata?.name;
  if (typeof name !== 'string' || !namePattern.test(name)) {
    throw new ConfigError(`metadata.name ${JSON.stringify(name)} must be a DNS label (${NAMESPACE_NAME_PATTERN})`, [
      { field: 'metadata.name', message: `must match ${NAMESPACE_NAME_PATTERN}` },
    ]);
  }
  const { spec, errors } = defaultSpec(manifest.spec);
  if (errors.length > 0) throw new ConfigError(describeErrors(errors), errors);
  return {
    apiVersion: CONFIG_API_VERSION,
    kind: CONFIG_KIND,
    name,
    counterType: spec.counterType,
    cassandra: {
      keyspace: spec.cassandra.keyspace ?? defaultKeyspace(name),
      replication: replicationOf(spec),
      eventsTable: 'events',
      rollupsTable: 'rollups',
    },
    eventStorage: { ...spec.eventStorage },
    rollup: { ...spec.rollup },
    cache: { ...spec.cache },
  };
}

/** Checks a resolved document (e.g. from an operator ConfigMap). */
export function validateNamespaceConfig(doc: unknown): NamespaceConfig {
  const errors = checkConfig(doc);
  if (errors.length > 0) throw new ConfigError(describeErrors(errors), errors);
  return doc as NamespaceConfig;
}
