import type { V1OwnerReference } from '@kubernetes/client-node';
import type { CounterNamespace } from '../../api/types';
import { LABELS, MANAGED_BY, PART_OF, boundedName } from '../../api/names';

/** The Secret holding the rollup Job's Cassandra role (./access.ts), beside its CronJob. */
export const rollupSecretName = (name: string): string => boundedName('tally-rollup', name, 253);
/** The key of the Cassandra CA in the rollup Job's Secret (with TLS). */
export const ROLLUP_CA_KEY = 'ca.crt';

/** The controller owner reference every owned object carries, so the garbage collector removes it with its owner. */
export function ownerReference(cns: CounterNamespace): V1OwnerReference {
  return {
    apiVersion: cns.apiVersion,
    kind: cns.kind,
    name: cns.metadata.name!,
    uid: cns.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function ownedLabels(cns: CounterNamespace): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.partOf]: PART_OF,
    [LABELS.counterNamespace]: cns.metadata.name!,
  };
}
