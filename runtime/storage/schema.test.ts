import { ownerComment, parseOwnerComment } from './schema';

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
