import {
  ApiException,
  AuthenticationV1Api,
  CoreV1Api,
  KubeConfig,
  VersionApi,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { versions } from '../stack/versions';
import { requireEnv } from '../support/env';
import { waitFor } from '../stack/wait';

/** The HTTP status an API call ends with: 200 when it succeeds, the server's code when it fails with one. */
async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

describe('kubernetes (local stack)', () => {
  // Fails at collection, with a clear message, when the global setup did not provide a cluster.
  requireEnv('KUBECONFIG');
  const kc = new KubeConfig();
  // Reads process.env.KUBECONFIG, one file or several separated by ':', like kubectl.
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  const run = randomUUID().slice(0, 8);
  const namespace = `tally-smoke-${run}`;
  const toDelete: string[] = [namespace];

  beforeAll(async () => {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });

  afterAll(async () => {
    // Namespace deletion removes everything the tests left in them; nobody waits for it to finish.
    await Promise.all(toDelete.map((name) => statusOf(core.deleteNamespace({ name }))));
  });

  it('reports the Kubernetes version the stack builds', async () => {
    const info = await kc.makeApiClient(VersionApi).getCode();
    expect(info.gitVersion).toBe(versions().KUBE_VERSION);
  });

  it('stores and returns a ConfigMap', async () => {
    const name = `roundtrip-${run}`;
    const data = { greeting: 'hello', multiline: 'a\nb\n' };
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name, labels: { run } }, data } });
    const read = await core.readNamespacedConfigMap({ name, namespace });
    expect(read.data).toEqual(data);
    expect(read.metadata?.labels).toEqual({ run });
    await core.deleteNamespacedConfigMap({ name, namespace });
    expect(await statusOf(core.readNamespacedConfigMap({ name, namespace }))).toBe(404);
  });

  it('finishes deleting a namespace with objects in it (namespace controller)', async () => {
    const doomed = `tally-smoke-del-${run}`;
    toDelete.push(doomed);
    await core.createNamespace({ body: { metadata: { name: doomed } } });
    await core.createNamespacedConfigMap({
      namespace: doomed,
      body: { metadata: { name: 'content' }, data: { a: '1' } },
    });
    await core.deleteNamespace({ name: doomed });
    await waitFor(
      `namespace ${doomed} is deleted`,
      async () => (await statusOf(core.readNamespace({ name: doomed }))) === 404,
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  });

  it('garbage-collects an object once its owner is deleted (garbage collector)', async () => {
    const owner = await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: `owner-${run}` }, data: { role: 'owner' } },
    });
    const dependent: V1ConfigMap = {
      metadata: {
        name: `dependent-${run}`,
        ownerReferences: [
          {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            name: owner.metadata!.name!,
            uid: owner.metadata!.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      data: { role: 'dependent' },
    };
    await core.createNamespacedConfigMap({ namespace, body: dependent });
    await core.deleteNamespacedConfigMap({ name: owner.metadata!.name!, namespace });
    await waitFor(
      `the dependent ConfigMap ${namespace}/${dependent.metadata!.name} is garbage-collected`,
      async () =>
        (await statusOf(core.readNamespacedConfigMap({ name: dependent.metadata!.name!, namespace }))) === 404,
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  });

  it('enforces RBAC: a service account without roles may not list ConfigMaps', async () => {
    const serviceAccount = `nobody-${run}`;
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token;
    expect(token).toBeTruthy();

    const cluster = kc.getCurrentCluster()!;
    const asServiceAccount = new KubeConfig();
    asServiceAccount.loadFromClusterAndUser(cluster, { name: serviceAccount, token: token! });

    // The token authenticates (so a refusal below is authorization, not a 401)...
    const review = await asServiceAccount.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${namespace}:${serviceAccount}`);
    // ...the admin may list ConfigMaps there, and the service account, with no role bound, may not.
    expect(await statusOf(core.listNamespacedConfigMap({ namespace }))).toBe(200);
    const forbidden = await statusOf(asServiceAccount.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace }));
    expect(forbidden).toBe(403);
  });
});
