import * as yaml from 'js-yaml';
import { CONFIG_KEY, CONFIG_LABEL_VALUE, LABELS, MANAGED_BY, configMapName, cronJobName } from '../../api/names';
import { resolveCounterNamespace } from '../../api/resolve';
import { desiredConfigMap } from './configmap';
import { desiredCronJob, rollupArgs } from './cronjob';
import { counterNamespace, operatorConfig } from './fakes';

const cns = counterNamespace('orders', { rollup: { schedule: '*/10 * * * *' } });
const config = resolveCounterNamespace(cns);
const controller = {
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  name: 'orders',
  uid: 'uid-orders',
  controller: true,
  blockOwnerDeletion: true,
};

describe('the owned objects', () => {
  it('ConfigMap: the resolved document with the operator’s Memcached, labelled for the runtime, owned by the CounterNamespace', () => {
    const cm = desiredConfigMap(cns, config, 'memcached-a:11211,memcached-b:11211');
    expect(cm.metadata).toEqual({
      name: configMapName('orders'),
      namespace: 'team-a',
      labels: {
        [LABELS.managedBy]: MANAGED_BY,
        [LABELS.partOf]: 'tally',
        [LABELS.counterNamespace]: 'orders',
        [LABELS.config]: CONFIG_LABEL_VALUE,
      },
      ownerReferences: [controller],
    });
    expect(yaml.load(cm.data![CONFIG_KEY]!)).toEqual({
      ...config,
      cache: { ...config.cache, servers: 'memcached-a:11211,memcached-b:11211' },
    });
    expect(yaml.load(desiredConfigMap(cns, config, undefined).data![CONFIG_KEY]!)).toEqual(config);
  });

  it('CronJob: `tally rollup` of this namespace on its schedule, never overlapping, unprivileged, owned', () => {
    const op = operatorConfig({
      cassandra: { ...operatorConfig().cassandra, username: 'tally_operator', password: 'operator-secret' },
      imagePullSecrets: ['registry'],
    });
    const job = desiredCronJob(cns, config, op);
    expect(job.metadata).toMatchObject({
      name: cronJobName('orders'),
      namespace: 'team-a',
      ownerReferences: [controller],
    });
    expect(job.spec).toMatchObject({ schedule: '*/10 * * * *', suspend: false, concurrencyPolicy: 'Forbid' });
    const pod = job.spec!.jobTemplate.spec!.template.spec!;
    expect(pod.imagePullSecrets).toEqual([{ name: 'registry' }]);
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    const container = pod.containers[0]!;
    expect(container.image).toBe('tally-runtime:test');
    expect(container.args).toEqual([
      'rollup',
      '--namespaces',
      `/etc/tally/namespace/${CONFIG_KEY}`,
      '--namespace',
      'orders',
    ]);
    expect(container.args).toEqual(rollupArgs(config));
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(container.env).toContainEqual({
      name: 'CASSANDRA_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'tally-rollup-orders', key: 'password' } },
    });
    expect(container.env).toContainEqual({ name: 'MEMCACHED_SERVERS', value: 'memcached:11211' });
    expect(pod.volumes).toEqual([{ name: 'namespace', configMap: { name: configMapName('orders') } }]);
  });
});
