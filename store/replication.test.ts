import { raisedReplication, sameReplication } from './replication';

describe('raisedReplication', () => {
  it('names where the replication factor goes up, for either strategy', () => {
    const simple = { class: 'org.apache.cassandra.locator.SimpleStrategy', replication_factor: '1' };
    expect(raisedReplication(simple, { class: 'SimpleStrategy', replicationFactor: 3 })).toEqual([
      'replication_factor',
    ]);
    expect(raisedReplication(simple, { class: 'SimpleStrategy', replicationFactor: 1 })).toEqual([]);
    const nts = { class: 'org.apache.cassandra.locator.NetworkTopologyStrategy', dc1: '3', dc2: '2' };
    expect(
      raisedReplication(nts, { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 2, dc2: 3, dc3: 1 } }),
    ).toEqual(['dc2', 'dc3']);
    // A change of strategy adds every replica it asks for.
    expect(raisedReplication(simple, { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 1 } })).toEqual(['dc1']);
  });
});

describe('sameReplication', () => {
  it('compares the strategy and every factor, ignoring datacenters set to 0', () => {
    const simple = { class: 'org.apache.cassandra.locator.SimpleStrategy', replication_factor: '3' };
    expect(sameReplication(simple, { class: 'SimpleStrategy', replicationFactor: 3 })).toBe(true);
    expect(sameReplication(simple, { class: 'SimpleStrategy', replicationFactor: 1 })).toBe(false);
    expect(sameReplication(simple, { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3 } })).toBe(false);
    const nts = { class: 'org.apache.cassandra.locator.NetworkTopologyStrategy', dc1: '3' };
    expect(sameReplication(nts, { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3, dc2: 0 } })).toBe(true);
    expect(sameReplication(nts, { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3, dc2: 1 } })).toBe(false);
  });
});
