import type { V1CronJob, V1Secret } from '@kubernetes/client-node';
import { ConditionType, Reason } from '../../api/conditions';
import { FINALIZER, cronJobName } from '../../api/names';
import type { CounterNamespace } from '../../api/types';
import { rollupRolePassword } from '../../store/roles';
import { rollupSecretName } from './owned';
import { FakeKubeApi, FakeSchemaStore, counterNamespace, operatorConfig, silentLog } from './fakes';
import { Reconciler } from './reconciler';

const OPERATOR_PASSWORD = 'operator-secret';
const op = operatorConfig({
  cassandra: {
    contactPoints: ['cassandra:9042'],
    localDataCenter: 'dc1',
    requestTimeoutMs: 1000,
    username: 'tally_operator',
    password: OPERATOR_PASSWORD,
  },
  runtimeRole: 'tally_runtime',
});
const decode = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

describe('Cassandra access: the runtime role, a rollup role per CounterNamespace and its Secret', () => {
  let kube: FakeKubeApi;
  let schema: FakeSchemaStore;
  let reconciler: Reconciler;
  beforeEach(() => {
    kube = new FakeKubeApi();
    schema = new FakeSchemaStore();
    reconciler = new Reconciler({
      kube,
      schema,
      operator: op,
      log: silentLog,
      get: (namespace, name) => kube.getCounterNamespace(namespace, name),
    });
  });
  const put = (name: string, spec: Record<string, unknown> = {}): void => kube.put(counterNamespace(name, spec));
  const stored = (name: string): CounterNamespace => kube.stored(counterNamespace(name));
  const secret = (name: string): V1Secret | undefined => kube.applied.get(`Secret/team-a/${rollupSecretName(name)}`);
  const deleteIt = (name: string): void => {
    const cns = stored(name);
    cns.metadata.deletionTimestamp = new Date();
    kube.put(cns);
  };

  it('grants the runtime role and a role of its own SELECT and MODIFY on the keyspace; the Job reads only that role', async () => {
    put('orders');
    expect(await reconciler.reconcile('team-a/orders')).toEqual({ kind: 'done' });
    expect(stored('orders').status?.conditions?.find((c) => c.type === ConditionType.Ready)?.status).toBe('True');

    const role = 'tally_rollup_uid_orders';
    expect([...schema.grants.get('tally_orders')!].sort()).toEqual([role, 'tally_runtime']);
    expect(schema.roles.get(role)).toBe(rollupRolePassword(OPERATOR_PASSWORD, 'uid-orders'));

    const s = secret('orders')!;
    expect(s.metadata).toMatchObject({
      name: 'tally-rollup-orders',
      namespace: 'team-a',
      ownerReferences: [{ kind: 'CounterNamespace', name: 'orders', uid: 'uid-orders', controller: true }],
    });
    expect({ username: decode(s.data?.username), password: decode(s.data?.password) }).toEqual({
      username: role,
      password: schema.roles.get(role),
    });
    expect(JSON.stringify(s)).not.toContain(Buffer.from(OPERATOR_PASSWORD).toString('base64'));

    const job = kube.applied.get(`CronJob/team-a/${cronJobName('orders')}`) as V1CronJob;
    const env = job.spec!.jobTemplate.spec!.template.spec!.containers[0]!.env!;
    const ref = (n: string) => env.find((e) => e.name === n)?.valueFrom?.secretKeyRef;
    expect([ref('CASSANDRA_USERNAME'), ref('CASSANDRA_PASSWORD')]).toEqual([
      { name: 'tally-rollup-orders', key: 'username' },
      { name: 'tally-rollup-orders', key: 'password' },
    ]);
    // The Secret comes before the CronJob that reads it; the role before the Secret that names it.
    const order = schema.calls.filter((c) => c.startsWith('ensureLoginRole') || c.startsWith('grantDataAccess'));
    expect(order).toEqual([
      'grantDataAccess tally_orders tally_runtime',
      `ensureLoginRole ${role}`,
      `grantDataAccess tally_orders ${role}`,
    ]);
    expect([...kube.applied.keys()].map((k) => k.split('/')[0])).toEqual(['ConfigMap', 'Secret', 'CronJob']);
  });

  it('gives each CounterNamespace its own role and password', async () => {
    put('orders');
    put('payments');
    await reconciler.reconcile('team-a/orders');
    await reconciler.reconcile('team-a/payments');
    expect([...schema.grants.get('tally_payments')!]).not.toContain('tally_rollup_uid_orders');
    expect(decode(secret('orders')!.data!.password)).not.toBe(decode(secret('payments')!.data!.password));
  });

  it('with neither credentials nor a runtime role (Cassandra without authentication) grants nothing and makes no Secret', async () => {
    reconciler = new Reconciler({
      kube,
      schema,
      operator: operatorConfig(),
      log: silentLog,
      get: (namespace, name) => kube.getCounterNamespace(namespace, name),
    });
    put('orders');
    expect(await reconciler.reconcile('team-a/orders')).toEqual({ kind: 'done' });
    expect(schema.grants.size).toBe(0);
    expect(schema.roles.size).toBe(0);
    expect(secret('orders')).toBeUndefined();
  });

  it("with TLS hands the Job the operator's CA in the same Secret, mounted as the file CASSANDRA_CA_FILE names", async () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const withTls = (cassandra: Partial<typeof op.cassandra>) =>
      new Reconciler({
        kube,
        schema,
        operator: operatorConfig({
          ...op,
          cassandra: { ...op.cassandra, ...cassandra, tls: { caFile: '/ca.crt', ca } },
        }),
        log: silentLog,
        get: (namespace, name) => kube.getCounterNamespace(namespace, name),
      });
    reconciler = withTls({});
    put('orders');
    expect(await reconciler.reconcile('team-a/orders')).toEqual({ kind: 'done' });
    expect(Object.keys(secret('orders')!.data!).sort()).toEqual(['ca.crt', 'password', 'username']);
    expect(decode(secret('orders')!.data!['ca.crt'])).toBe(ca);
    const pod = (kube.applied.get(`CronJob/team-a/${cronJobName('orders')}`) as V1CronJob).spec!.jobTemplate.spec!
      .template.spec!;
    const file = pod.containers[0]!.env!.find((e) => e.name === 'CASSANDRA_CA_FILE')?.value;
    const mount = pod.containers[0]!.volumeMounts!.find((m) => m.name === 'cassandra-ca')!;
    expect(file).toBe(`${mount.mountPath}/ca.crt`);
    expect(mount.readOnly).toBe(true);
    expect(pod.volumes!.find((v) => v.name === 'cassandra-ca')?.secret).toEqual({
      secretName: 'tally-rollup-orders',
      items: [{ key: 'ca.crt', path: 'ca.crt' }],
    });

    // Without a login (Cassandra without authentication) the Secret still carries the CA, and only the CA.
    reconciler = withTls({ username: undefined, password: undefined });
    put('payments');
    expect(await reconciler.reconcile('team-a/payments')).toEqual({ kind: 'done' });
    expect(Object.keys(secret('payments')!.data!)).toEqual(['ca.crt']);
    const env = (kube.applied.get(`CronJob/team-a/${cronJobName('payments')}`) as V1CronJob).spec!.jobTemplate.spec!
      .template.spec!.containers[0]!.env!;
    expect(env.map((e) => e.name)).not.toContain('CASSANDRA_USERNAME');
  });

  it('without TLS mounts no CA and sets no CASSANDRA_CA_FILE', async () => {
    put('orders');
    await reconciler.reconcile('team-a/orders');
    const pod = (kube.applied.get(`CronJob/team-a/${cronJobName('orders')}`) as V1CronJob).spec!.jobTemplate.spec!
      .template.spec!;
    expect(pod.containers[0]!.env!.map((e) => e.name)).not.toContain('CASSANDRA_CA_FILE');
    expect(pod.volumes!.map((v) => v.name)).toEqual(['namespace']);
    expect(Object.keys(secret('orders')!.data!).sort()).toEqual(['password', 'username']);
  });

  it('on deletion (Retain) drops the rollup role and revokes the runtime role, then lets go', async () => {
    put('orders');
    await reconciler.reconcile('team-a/orders');
    deleteIt('orders');
    expect(await reconciler.reconcile('team-a/orders')).toEqual({ kind: 'done' });
    expect(schema.roles.size).toBe(0);
    expect([...schema.grants.get('tally_orders')!]).toEqual([]);
    expect(schema.keyspaces.has('tally_orders')).toBe(true);
    expect(stored('orders').metadata.finalizers).toEqual([]);
  });

  it("never revokes the runtime's access to a keyspace another CounterNamespace owns", async () => {
    put('orders');
    await reconciler.reconcile('team-a/orders');
    put('thief', { cassandra: { keyspace: 'tally_orders' } });
    await reconciler.reconcile('team-a/thief');
    expect(stored('thief').status?.conditions?.find((c) => c.type === ConditionType.Ready)?.reason).toBe(
      Reason.KeyspaceConflict,
    );
    deleteIt('thief');
    expect(await reconciler.reconcile('team-a/thief')).toEqual({ kind: 'done' });
    expect([...schema.grants.get('tally_orders')!].sort()).toEqual(['tally_rollup_uid_orders', 'tally_runtime']);
  });

  it('keeps the finalizer while Cassandra is down, saying why', async () => {
    put('orders');
    await reconciler.reconcile('team-a/orders');
    deleteIt('orders');
    schema.down = new Error('connection refused');
    expect(await reconciler.reconcile('team-a/orders')).toMatchObject({ kind: 'error' });
    expect(stored('orders').metadata.finalizers).toEqual([FINALIZER]);
    expect(stored('orders').status?.conditions?.find((c) => c.type === ConditionType.Ready)).toMatchObject({
      reason: Reason.Deleting,
      message: expect.stringContaining('connection refused') as string,
    });
  });

  it('stops before the ConfigMap when a grant is refused, as CassandraRejected', async () => {
    put('orders');
    schema.grantDataAccess = () =>
      Promise.reject(Object.assign(new Error('User tally_operator has no AUTHORIZE permission'), { code: 0x2100 }));
    const result = await reconciler.reconcile('team-a/orders');
    expect(result).toMatchObject({ kind: 'requeue' });
    expect(stored('orders').status?.conditions?.find((c) => c.type === ConditionType.Ready)).toMatchObject({
      status: 'False',
      reason: Reason.CassandraRejected,
      message: expect.stringContaining('tally_runtime') as string,
    });
    expect(kube.applied.size).toBe(0);
  });
});
