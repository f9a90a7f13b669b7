import { ownerComment, parseOwnerComment, raisedReplication } from './schema';

describe('the ownership comment', () => {
  it('round-trips the owning CounterNamespace as structured fields', () => {
    const ownership = {
      owner: 'uid-1',
      name: 'CounterNamespace team-a/orders',
      counterNamespace: { namespace: 'team-a', name: 'orders' },
      keyspaceCreated: true,
    };
    expect(parseOwnerComment(ownerComment(ownership))).toEqual(ownership);
  });

  it('derives namespace and name from the display name of comments written before the structured fields', () => {
    expect(
      parseOwnerComment('{"tally":{"owner":"uid-1","name":"CounterNamespace team-a/orders","keyspaceCreated":true}}'),
    ).toEqual({
      owner: 'uid-1',
      name: 'CounterNamespace team-a/orders',
      counterNamespace: { namespace: 'team-a', name: 'orders' },
      keyspaceCreated: true,
    });
  });

  it('has no CounterNamespace for the runtime owner, and nothing for comments that are not Tally', () => {
    expect(parseOwnerComment('{"tally":{"owner":"tally","keyspaceCreated":false}}')).toEqual({
      owner: 'tally',
      keyspaceCreated: false,
    });
    expect(parseOwnerComment('{"tally":{"owner":"u","name":"someone else","counterNamespace":{"name":1}}}')).toEqual({
      owner: 'u',
      name: 'someone else',
      keyspaceCreated: false,
    });
    expect(parseOwnerComment('a DBA wrote this')).toBeUndefined();
    expect(parseOwnerComment(null)).toBeUndefined();
  });
});

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
