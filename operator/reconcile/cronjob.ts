import type { V1CronJob, V1EnvVar, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { NamespaceConfig } from '../../api/namespace-config';
import type { CounterNamespace } from '../../api/types';
import { CONFIG_KEY, configMapName, cronJobName } from '../../api/names';
import { rollupCredentialsEnabled, type OperatorConfig } from '../config';
import { ROLLUP_CA_KEY, ownedLabels, ownerReference, rollupSecretName } from './owned';

const CONFIG_MOUNT = '/etc/tally/namespace';
const CA_MOUNT = '/etc/tally/cassandra-ca';

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
  if (op.cassandra.tls) env.push({ name: 'CASSANDRA_CA_FILE', value: `${CA_MOUNT}/${ROLLUP_CA_KEY}` });
  if (op.memcachedServers) env.push({ name: 'MEMCACHED_SERVERS', value: op.memcachedServers });
  return env;
}

/** The namespace's config, and with TLS the CA from the rollup Secret, as read-only files. */
function rollupVolumes(cns: CounterNamespace, op: OperatorConfig): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const volumes: V1Volume[] = [{ name: 'namespace', configMap: { name: configMapName(cns.metadata.name!) } }];
  const mounts: V1VolumeMount[] = [{ name: 'namespace', mountPath: CONFIG_MOUNT, readOnly: true }];
  if (op.cassandra.tls) {
    const secretName = rollupSecretName(cns.metadata.name!);
    volumes.push({
      name: 'cassandra-ca',
      secret: { secretName, items: [{ key: ROLLUP_CA_KEY, path: ROLLUP_CA_KEY }] },
    });
    mounts.push({ name: 'cassandra-ca', mountPath: CA_MOUNT, readOnly: true });
  }
  return { volumes, mounts };
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
  const { volumes, mounts } = rollupVolumes(cns, op);
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
                  volumeMounts: mounts,
                },
              ],
              volumes,
            },
          },
        },
      },
    },
  };
}
