import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { CRD_GROUP, CRD_KIND, CRD_VERSION } from './names';
import type { counterNamespaceSpecSchema } from './spec-schema';
import type { FromSchema } from './from-schema';
import type { conditionSchema, counterNamespaceStatusSchema } from './status-schema';

/**
 * The CounterNamespace resource as TypeScript types, derived from the same schemas the CRD is generated from
 * (api/crd.ts), so the two cannot disagree. The spec is as the API server stores it: every defaulted field is
 * present. These are the only CounterNamespace types: api/resolve.ts resolves this spec type too.
 */
export type CounterNamespaceSpec = FromSchema<typeof counterNamespaceSpecSchema>;
export type CounterNamespaceStatus = FromSchema<typeof counterNamespaceStatusSchema>;
/** A status condition (metav1.Condition). */
export type Condition = FromSchema<typeof conditionSchema>;

export interface CounterNamespace {
  apiVersion: `${typeof CRD_GROUP}/${typeof CRD_VERSION}`;
  kind: typeof CRD_KIND;
  metadata: V1ObjectMeta;
  spec: CounterNamespaceSpec;
  status?: CounterNamespaceStatus;
}
