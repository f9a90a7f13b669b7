import type { KubernetesObject, V1CronJobStatus } from '@kubernetes/client-node';
import pino from 'pino';
import { CRD_API_VERSION, CRD_KIND, FINALIZER } from '../../api/names';
import type { NamespaceConfig } from '../../api/namespace-config';
import type { CounterNamespace, CounterNamespaceStatus } from '../../api/types';
import { noSchemaChanges, type EnsureSchemaOptions, type SchemaChanges } from '../../store/ensure';
import { KeyspaceOwnedError, RUNTIME_OWNER, claimOf, type Ownership } from '../../store/ownership';
import { raisedReplication, sameReplication, type StoredReplication } from '../../store/replication';
import type { OperatorConfig } from '../config';
import type { KubeApi } from '../kube-api';
import type { SchemaStore } from '../schema-store';
import type { ReconcileContext } from './context';

/**
 * Fakes of the two seams the reconcile steps talk through (KubeApi and SchemaStore), for unit tests: they keep
 * what was written so a test can look, and fail a call when a test says so. The real API server and Cassandra are
 * exercised by test/integration/operator/.
 */

/** A stored API object's copy: what a GET returns, never the test's own object. */
const copy = <T>(value: T): T => structuredClone(value);

export interface RecordedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export class FakeKubeApi implements KubeApi {
  /** The CounterNamespaces the "API server" has, by namespace/name. */
  readonly objects = new Map<string, CounterNamespace>();
  /** Applied owned objects, by kind/namespace/name. */
  readonly applied = new Map<string, KubernetesObject>();
  readonly events: RecordedEvent[] = [];
  readonly statusWrites: CounterNamespaceStatus[] = [];
  readonly finalizerWrites: string[][] = [];
  /** Makes the next calls of a method fail with these errors (one per call). */
  readonly failures: Partial<Record<keyof KubeApi, Error[]>> = {};
  private version = 100;

  put(cns: CounterNamespace): void {
    this.objects.set(`${cns.metadata.namespace}/${cns.metadata.name}`, copy(cns));
  }

  stored(cns: CounterNamespace): CounterNamespace {
    return copy(this.objects.get(`${cns.metadata.namespace}/${cns.metadata.name}`)!);
  }

  private fail(method: keyof KubeApi): void {
    const err = this.failures[method]?.shift();
    if (err !== undefined) throw err;
  }

  getCounterNamespace(namespace: string, name: string): Promise<CounterNamespace | undefined> {
    this.fail('getCounterNamespace');
    const found = this.objects.get(`${namespace}/${name}`);
    return Promise.resolve(found ? copy(found) : undefined);
  }

  setFinalizers(cns: CounterNamespace, finalizers: string[]): Promise<CounterNamespace> {
    this.fail('setFinalizers');
    this.finalizerWrites.push([...finalizers]);
    const stored = this.objects.get(`${cns.metadata.namespace}/${cns.metadata.name}`) ?? copy(cns);
    stored.metadata.finalizers = [...finalizers];
    stored.metadata.resourceVersion = String(++this.version);
    this.put(stored);
    return Promise.resolve(copy(stored));
  }

  patchStatus(cns: CounterNamespace, status: CounterNamespaceStatus): Promise<void> {
    this.fail('patchStatus');
    this.statusWrites.push(copy(status));
    const stored = this.objects.get(`${cns.metadata.namespace}/${cns.metadata.name}`);
    if (stored) {
      // A merge patch, as KubeClient sends: fields the patch does not name stay.
      stored.status = { ...stored.status, ...copy(status) };
      stored.metadata.resourceVersion = String(++this.version);
    }
    return Promise.resolve();
  }

  /** The status the CronJob controller gave the rollup CronJob: an apply answers with it, as the API server does. */
  cronJobStatus: V1CronJobStatus | undefined;

  apply<T extends KubernetesObject>(obj: T): Promise<T> {
    this.fail('apply');
    this.applied.set(`${obj.kind}/${obj.metadata?.namespace}/${obj.metadata?.name}`, copy(obj));
    const answer = copy(obj);
    if (obj.kind === 'CronJob' && this.cronJobStatus) Object.assign(answer, { status: copy(this.cronJobStatus) });
    return Promise.resolve(answer);
  }

  recordEvent(_cns: CounterNamespace, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    this.fail('recordEvent');
    this.events.push({ type, reason, message });
    return Promise.resolve();
  }
}

interface FakeKeyspace {
  replication: StoredReplication;
  /** The rollups table's ownership, when the table exists. */
  ownership?: Ownership;
  /** The events table's retention, when the table exists. */
  retentionSeconds?: number;
}

/** Cassandra's schema as the reconcile sees it through SchemaStore, following store/ensure.ts's rules. */
export class FakeSchemaStore implements SchemaStore {
  readonly keyspaces = new Map<string, FakeKeyspace>();
  readonly calls: string[] = [];
  /** While set, every call fails with it (Cassandra down). */
  down: Error | undefined;
  /**
   * Runs once, right after an ensureSchema creates a keyspace, before any table: a test fails the call there (CREATE
   * TABLE failed) or never lets it return (the operator was killed).
   */
  afterCreateKeyspace: (() => Promise<void>) | undefined;
  agreement = true;

  private call(what: string): void {
    this.calls.push(what);
    if (this.down) throw this.down;
  }

  readOwnership(config: NamespaceConfig): Promise<Ownership | undefined> {
    this.call(`readOwnership ${config.cassandra.keyspace}`);
    const ownership = this.keyspaces.get(config.cassandra.keyspace)?.ownership;
    return Promise.resolve(ownership ? copy(ownership) : undefined);
  }

  setOwnership(config: NamespaceConfig, ownership: Ownership): Promise<void> {
    this.call(`setOwnership ${config.cassandra.keyspace}`);
    this.keyspaces.get(config.cassandra.keyspace)!.ownership = copy(ownership);
    return Promise.resolve();
  }

  async ensureSchema(config: NamespaceConfig, opts: EnsureSchemaOptions): Promise<SchemaChanges> {
    this.call(`ensureSchema ${config.cassandra.keyspace}`);
    const { keyspace, replication, rollupsTable, eventsTable } = config.cassandra;
    const changes = noSchemaChanges();
    let ks = this.keyspaces.get(keyspace);
    const wanted: StoredReplication =
      replication.class === 'SimpleStrategy'
        ? { class: replication.class, replication_factor: String(replication.replicationFactor) }
        : {
            class: replication.class,
            ...Object.fromEntries(Object.entries(replication.dataCenters).map(([d, n]) => [d, String(n)])),
          };
    if (!ks) {
      await opts.creation?.creating();
      ks = { replication: wanted };
      this.keyspaces.set(keyspace, ks);
      changes.keyspaceCreated = true;
      const hook = this.afterCreateKeyspace;
      this.afterCreateKeyspace = undefined;
      await hook?.();
    }
    if (!ks.ownership) {
      ks.ownership = {
        owner: opts.owner ?? RUNTIME_OWNER,
        ...(opts.ownerName ? { name: opts.ownerName } : {}),
        ...(opts.counterNamespace ? { counterNamespace: opts.counterNamespace } : {}),
        keyspaceCreated: changes.keyspaceCreated || ((await opts.creation?.wasCreating()) ?? false),
      };
      changes.tablesCreated.push(rollupsTable);
    }
    const claim = claimOf(ks.ownership, opts.owner, rollupsTable);
    if (claim.kind === 'taken' || claim.kind === 'adoptable') {
      throw new KeyspaceOwnedError(keyspace, claim.why, claim.ownership);
    }
    if (!sameReplication(ks.replication, replication)) {
      changes.replicationAltered = true;
      changes.replicasAdded = raisedReplication(ks.replication, replication);
      ks.replication = wanted;
    }
    if (ks.retentionSeconds === undefined) changes.tablesCreated.push(eventsTable);
    else if (ks.retentionSeconds !== config.eventStorage.retentionSeconds) changes.tablesAltered.push(eventsTable);
    ks.retentionSeconds = config.eventStorage.retentionSeconds;
    return changes;
  }

  dropKeyspace(keyspace: string): Promise<void> {
    this.call(`dropKeyspace ${keyspace}`);
    this.keyspaces.delete(keyspace);
    this.grants.delete(keyspace); // as Cassandra does
    return Promise.resolve();
  }

  keyspaceTables(keyspace: string): Promise<string[] | undefined> {
    this.call(`keyspaceTables ${keyspace}`);
    const ks = this.keyspaces.get(keyspace);
    if (!ks) return Promise.resolve(undefined);
    return Promise.resolve([
      ...(ks.ownership ? ['rollups'] : []),
      ...(ks.retentionSeconds !== undefined ? ['events'] : []),
    ]);
  }

  schemaAgreement(): Promise<boolean> {
    this.call('schemaAgreement');
    return Promise.resolve(this.agreement);
  }

  /** Login roles and their passwords; the roles holding SELECT and MODIFY on each keyspace. */
  readonly roles = new Map<string, string>();
  readonly grants = new Map<string, Set<string>>();

  grantDataAccess(keyspace: string, role: string): Promise<void> {
    this.call(`grantDataAccess ${keyspace} ${role}`);
    if (!this.grants.has(keyspace)) this.grants.set(keyspace, new Set());
    this.grants.get(keyspace)!.add(role);
    return Promise.resolve();
  }

  revokeDataAccess(keyspace: string, role: string): Promise<void> {
    this.call(`revokeDataAccess ${keyspace} ${role}`);
    this.grants.get(keyspace)?.delete(role);
    return Promise.resolve();
  }

  ensureLoginRole(role: string, password: string): Promise<void> {
    this.call(`ensureLoginRole ${role}`);
    if (!this.roles.has(role)) this.roles.set(role, password);
    return Promise.resolve();
  }

  dropRole(role: string): Promise<void> {
    this.call(`dropRole ${role}`);
    this.roles.delete(role);
    for (const holders of this.grants.values()) holders.delete(role);
    return Promise.resolve();
  }
}

export const silentLog = pino({ level: 'silent' });

export const operatorConfig = (extra: Partial<OperatorConfig> = {}): OperatorConfig => ({
  cassandra: { contactPoints: ['cassandra:9042'], localDataCenter: 'dc1', requestTimeoutMs: 1000 },
  memcachedServers: 'memcached:11211',
  runtimeImage: 'tally-runtime:test',
  imagePullPolicy: 'IfNotPresent',
  watchNamespaces: [],
  leaseNamespace: 'tally-system',
  leaseName: 'tally-operator',
  identity: 'test',
  port: 0,
  concurrency: 1,
  resyncMs: 60_000,
  ...extra,
});

/** A CounterNamespace as the API server returns it after creation (spec defaulted by resolve in the steps). */
export function counterNamespace(name = 'orders', spec: Record<string, unknown> = {}): CounterNamespace {
  return {
    apiVersion: CRD_API_VERSION,
    kind: CRD_KIND,
    metadata: { namespace: 'team-a', name, uid: `uid-${name}`, generation: 1, resourceVersion: '1' },
    spec: spec as CounterNamespace['spec'],
  };
}

/** The same, with the finalizer already on (the state every step after ensureFinalizer sees). */
export function finalized(cns: CounterNamespace): CounterNamespace {
  return { ...cns, metadata: { ...cns.metadata, finalizers: [FINALIZER] } };
}

/** A step's context over the fakes, as the reconciler builds it. */
export function contextFor(
  cns: CounterNamespace,
  kube: FakeKubeApi,
  schema: FakeSchemaStore,
  operator: OperatorConfig = operatorConfig(),
): ReconcileContext {
  return {
    cns: copy(cns),
    status: copy(cns.status ?? {}),
    kube,
    schema,
    operator,
    log: silentLog,
    event: (type, reason, message) => kube.recordEvent(cns, type, reason, message),
  };
}
