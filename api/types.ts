import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { CRD_GROUP, CRD_KIND, CRD_VERSION } from './resolve';
import type { counterNamespaceSpecSchema } from './spec-schema';
import type { FromSchema } from './from-schema';
import type { conditionSchema, counterNamespaceStatusSchema } from './status-schema';

/**
 * The CounterNamespace resource as TypeScript types, derived from the same schemas the CRD is generated from
 * (operator/api/crd.ts), so the two cannot disagree. The spec is as the API server stores it: every defaulted field
 * is present. operator/api/crd.test.ts also proves it equal to the hand-written `CounterNamespaceSpec` of
 * runtime/namespace/resolve.ts.
 */
export type CounterNamespaceSpec = FromSchema<typeof counterNamespaceSpecSchema>;
export type CounterNamespaceStatus = FromSchema<typeof counterNamespaceStatusSchema>;
/** A status condition (metav1.Condition). */
export type Condition = FromSchema<typeof conditionSchema>;
export type ConditionStatus = Condition['status'];

export interface CounterNamespace {
  apiVersion: `${typeof CRD_GROUP}/${typeof CRD_VERSION}`;
  kind: typeof CRD_KIND;
  metadata: V1ObjectMeta;
  spec: CounterNamespaceSpec;
  status?: CounterNamespaceStatus;
}
