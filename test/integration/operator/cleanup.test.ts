import { CoreV1Api } from '@kubernetes/client-node';
import { FINALIZER } from '../../../api/names';
import { createNamespace, customObjects, deleteNamespace, installCrd, kubeConfig } from '../../support/kube';
import { uniqueSuffix } from '../../support/runtime-harness';

/**
 * The tests' own cleanup: a namespace holding a CounterNamespace with the operator's finalizer, and no operator left
 * to remove it, must still go away (before, such namespaces stayed Terminating for good and the namespace controller
 * kept the API server busy retrying them, slowing every later test and benchmark).
 */
describe('test cleanup', () => {
  it('deletes a namespace whose CounterNamespaces still carry the finalizer', async () => {
    const kc = kubeConfig();
    await installCrd(kc);
    const ns = `tally-cleanup-${uniqueSuffix()}`;
    await createNamespace(kc, ns);
    await customObjects(kc).createNamespacedCustomObject({
      group: 'tally.dev',
      version: 'v1alpha1',
      plural: 'counternamespaces',
      namespace: ns,
      body: {
        apiVersion: 'tally.dev/v1alpha1',
        kind: 'CounterNamespace',
        metadata: { name: 'orphan', finalizers: [FINALIZER] },
        spec: {},
      },
    });
    await deleteNamespace(kc, ns, true);
    await expect(kc.makeApiClient(CoreV1Api).readNamespace({ name: ns })).rejects.toMatchObject({ code: 404 });
  });
});
