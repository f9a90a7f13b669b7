import pino from 'pino';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Client } from 'cassandra-driver';
import { CRD_API_VERSION, CRD_GROUP, CRD_KIND, CRD_PLURAL, CRD_VERSION } from '../../../api/names';
import type { CounterNamespace } from '../../../api/types';
import type { OperatorConfig } from '../../../operator/config';
import type { KubeClient } from '../../../operator/kube-api';
import { Reconciler } from '../../../operator/reconcile/reconciler';
import type { ReconcileResult } from '../../../operator/reconcile/step';
import { cassandraSchemaStore } from '../../../operator/schema-store';
import { cassandraSettingsFromEnv } from '../../../store/client';
import { customObjects } from '../../support/kube';
import { stackEnv } from '../../support/runtime-harness';

/** The reconciler driven by a test, step by step, against the real API server and Cassandra. */

export const GROUP = { group: CRD_GROUP, version: CRD_VERSION, plural: CRD_PLURAL };

/** The operator's settings against the local stack; no Lease (a test calls the reconciler itself). */
export function stackOperatorConfig(extra: Partial<OperatorConfig> = {}): OperatorConfig {
  return {
    cassandra: cassandraSettingsFromEnv(stackEnv()),
    memcachedServers: stackEnv().MEMCACHED_SERVERS!,
    runtimeImage: 'tally-runtime:test',
    imagePullPolicy: 'IfNotPresent',
    watchNamespaces: [],
    leaseNamespace: 'default',
    leaseName: 'unused',
    identity: 'test',
    port: 0,
    concurrency: 1,
    resyncMs: 300_000,
    ...extra,
  };
}

/** A reconciler that reads the object from the API server (no informer) and talks to Cassandra through `client`. */
export function reconcilerOn(kube: KubeClient, client: Client, operator: OperatorConfig): Reconciler {
  return new Reconciler({
    kube,
    schema: cassandraSchemaStore(client),
    operator,
    log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    get: (namespace, name) => kube.getCounterNamespace(namespace, name),
  });
}

/** Reconciles until the result is done, a failure or a long requeue, as the work queue would. */
export async function reconcileToRest(reconciler: Reconciler, key: string): Promise<ReconcileResult> {
  let result: ReconcileResult = { kind: 'done' };
  for (let i = 0; i < 10; i++) {
    result = await reconciler.reconcile(key);
    if (result.kind !== 'requeue' || result.afterMs > 10_000) return result;
    await new Promise((r) => setTimeout(r, result.kind === 'requeue' ? result.afterMs : 0));
  }
  return result;
}

export async function createCounterNamespace(
  kc: KubeConfig,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<CounterNamespace> {
  return (await customObjects(kc).createNamespacedCustomObject({
    ...GROUP,
    namespace,
    body: { apiVersion: CRD_API_VERSION, kind: CRD_KIND, metadata: { name }, spec },
  })) as CounterNamespace;
}
