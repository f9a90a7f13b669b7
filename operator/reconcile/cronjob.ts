import type { V1CronJob, V1EnvVar } from '@kubernetes/client-node';
import type { NamespaceConfig } from '../../api/namespace-config';
import type { CounterNamespace } from '../../api/types';
import { CONFIG_KEY, configMapName, cronJobName } from '../../api/names';
import { rollupCredentialsEnabled, type OperatorConfig } from '../config';
import { ownedLabels, ownerReference, rollupSecretName } from './owned';

const CONFIG_MOUNT = '/etc/tally/namespace';

/**
 * Cassandra and Memcached settings for the rollup Job; its credentials are its CounterNamespace's own role, from the
 * Secret the operator keeps beside the CronJob (./access.ts), never the operator's.
 */
function rollupEnv(cns: CounterNamespace, op: OperatorConfig): V1EnvVar[] {
  const env: V1EnvVar[] = [
    { name: 'CASSANDRA_CONTACT_POINTS', value: op.cassandra.contactPoints.join(',') },
    { name: 'CASSANDRA_LOCAL_DC', value: op.cassandra.localDataCenter },
    { name: 'LOG_LEVEL', value: 'info' },
  ];
  if (rollupCredentialsEnabled(op)) {
    const name = rollupSecretName(cns.metadata.name!);
    env.push(
      { name: 'CASSANDRA_USERNAME', valueFrom: { secretKeyRef: { name, key: 'username' } } },
      { name: 'CASSANDRA_PASSWORD', valueFrom: { secretKeyRef: { name, key: 'password' } } },
    );
  }
  if (op.memcachedServers) env.push({ name: 'MEMCACHED_SERVERS', value: op.memcachedServers });
  return env;
}

/** The command the CronJob's container runs; tests run exactly this to prove the Job works. */
export function rollupArgs(config: NamespaceConfig): string[] {
  return ['rollup', '--namespaces', `${CONFIG_MOUNT}/${CONFIG_KEY}`, '--namespace', config.name];
}

/**
 * The sweeper: `tally rollup` for this namespace on its schedule. Forbid overlapping runs, keep a short history, and
 * run as a non-root, read-only, unprivileged container with modest resource requests.
 */
export function desiredCronJob(cns: CounterNamespace, config: NamespaceConfig, op: OperatorConfig): V1CronJob {
  const labels = ownedLabels(cns);
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name: cronJobName(cns.metadata.name!),
      namespace: cns.metadata.namespace!,
      labels,
      ownerReferences: [ownerReference(cns)],
    },
    spec: {
      schedule: config.rollup.schedule,
      suspend: config.rollup.suspend,
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 300,
      successfulJobsHistoryLimit: 1,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels },
        spec: {
          backoffLimit: 2,
          activeDeadlineSeconds: 3600,
          ttlSecondsAfterFinished: 86400,
          template: {
            metadata: { labels },
            spec: {
              restartPolicy: 'Never',
              automountServiceAccountToken: false,
              ...(op.imagePullSecrets?.length
                ? { imagePullSecrets: op.imagePullSecrets.map((name) => ({ name })) }
                : {}),
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 10001,
                runAsGroup: 10001,
                seccompProfile: { type: 'RuntimeDefault' },
              },
              containers: [
                {
                  name: 'rollup',
                  image: op.runtimeImage,
                  imagePullPolicy: op.imagePullPolicy,
                  args: rollupArgs(config),
                  env: rollupEnv(cns, op),
                  resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } },
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    capabilities: { drop: ['ALL'] },
                  },
                  volumeMounts: [{ name: 'namespace', mountPath: CONFIG_MOUNT, readOnly: true }],
                },
              ],
              volumes: [{ name: 'namespace', configMap: { name: configMapName(cns.metadata.name!) } }],
            },
          },
        },
      },
    },
  };
}
