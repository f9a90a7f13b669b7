import type { V1ConfigMap } from '@kubernetes/client-node';
import type { CounterNamespace } from '../../api/types';
import { resolveCounterNamespace } from '../../api/resolve';
import { controllerOf, vouchedFor } from './configmap-source';

const cns = (keyspace?: string): CounterNamespace =>
  ({
    apiVersion: 'tally.dev/v1alpha1',
    kind: 'CounterNamespace',
    metadata: { namespace: 'team-a', name: 'orders', uid: 'uid-orders' },
    spec: {},
    ...(keyspace ? { status: { keyspace } } : {}),
  }) as CounterNamespace;

const configMap = (name: string, uid: string, ownerName = 'orders'): V1ConfigMap => ({
  metadata: {
    namespace: 'team-a',
    name,
    ownerReferences: [
      { apiVersion: 'tally.dev/v1alpha1', kind: 'CounterNamespace', name: ownerName, uid, controller: true },
    ],
  },
});

describe('controllerOf: only a ConfigMap its existing CounterNamespace controls is vouched for', () => {
  const lookup = (namespace: string, name: string) => (namespace === 'team-a' && name === 'orders' ? cns() : undefined);

  it("accepts the operator's ConfigMap of an existing CounterNamespace with that uid", () => {
    expect(controllerOf(configMap('tally-orders', 'uid-orders'), lookup)).toMatchObject({ ok: true });
  });

  it('refuses an owner reference with a uid no CounterNamespace has (forged, or left by a deleted one)', () => {
    expect(controllerOf(configMap('tally-orders', 'uid-forged'), lookup)).toEqual({
      ok: false,
      why: 'its controller, CounterNamespace team-a/orders with uid uid-forged, does not exist: not served',
    });
    expect(controllerOf(configMap('tally-billing', 'uid-x', 'billing'), lookup)).toMatchObject({ ok: false });
  });

  it('refuses a second ConfigMap claiming a real CounterNamespace (right uid, not the name the operator uses)', () => {
    expect(controllerOf(configMap('tally-evil', 'uid-orders'), lookup)).toEqual({
      ok: false,
      why: 'CounterNamespace team-a/orders keeps its configuration in ConfigMap tally-orders, not this one: not served',
    });
  });

  it('refuses a ConfigMap no CounterNamespace controls', () => {
    expect(controllerOf({ metadata: { namespace: 'team-a', name: 'tally-orders' } }, lookup)).toMatchObject({
      ok: false,
      why: expect.stringContaining('not controlled by a CounterNamespace'),
    });
  });
});

describe('vouchedFor: the document must be what the operator provisioned', () => {
  const doc = (name: string, keyspace?: string) =>
    resolveCounterNamespace({
      apiVersion: 'tally.dev/v1alpha1',
      kind: 'CounterNamespace',
      metadata: { name },
      spec: { counterType: 'Eventual', ...(keyspace ? { cassandra: { keyspace } } : {}) },
    });

  it('serves the document naming the CounterNamespace and the keyspace in its status', () => {
    expect(vouchedFor(doc('orders'), cns('tally_orders'))).toEqual({ kind: 'served' });
  });

  it("refuses one pointing at another keyspace (another tenant's) than the operator provisioned", () => {
    expect(vouchedFor(doc('orders', 'tally_payroll'), cns('tally_orders'))).toEqual({
      kind: 'refused',
      why: 'names keyspace tally_payroll, but the operator provisioned tally_orders for CounterNamespace team-a/orders: not served',
    });
  });

  it('refuses one defining another namespace name, and waits while the status names no keyspace yet', () => {
    expect(vouchedFor(doc('payroll'), cns('tally_orders'))).toMatchObject({ kind: 'refused' });
    expect(vouchedFor(doc('orders'), cns())).toEqual({ kind: 'pending' });
  });
});
