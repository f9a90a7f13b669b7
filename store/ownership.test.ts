import { NOT_TALLY, RUNTIME_OWNER, claimOf, mayDrop, ownerComment, ownershipOf, parseOwnerComment } from './ownership';

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

describe('claimOf: what a claimant may do with a keyspace', () => {
  const mine = { owner: 'uid-1', name: 'CounterNamespace team-a/orders', keyspaceCreated: true };

  it('leaves a keyspace without a rollups table to whoever creates it', () => {
    expect(claimOf(undefined, 'uid-1', 'rollups')).toEqual({ kind: 'unclaimed' });
    expect(claimOf(undefined, undefined, 'rollups')).toEqual({ kind: 'unclaimed' });
  });

  it('gives the claimant its own tables, and the runtime (no claimant) any Tally owner’s', () => {
    expect(claimOf(mine, 'uid-1', 'rollups')).toEqual({ kind: 'ours', ownership: mine });
    expect(claimOf(mine, undefined, 'rollups')).toEqual({ kind: 'ours', ownership: mine });
  });

  it('lets an operator claimant adopt what serve --provision made, and nobody take another owner’s', () => {
    const runtime = { owner: RUNTIME_OWNER, keyspaceCreated: true };
    expect(claimOf(runtime, 'uid-2', 'rollups')).toEqual({
      kind: 'adoptable',
      ownership: runtime,
      why: 'it belongs to tally',
    });
    expect(claimOf(mine, 'uid-2', 'rollups')).toEqual({
      kind: 'taken',
      ownership: mine,
      why: 'it belongs to CounterNamespace team-a/orders',
    });
  });

  it('refuses a rollups table that is not Tally’s to every claimant', () => {
    const foreign = ownershipOf('a DBA wrote this');
    expect(foreign).toEqual({ owner: NOT_TALLY, keyspaceCreated: false });
    for (const claimant of ['uid-1', undefined]) {
      expect(claimOf(foreign, claimant, 'rollups')).toEqual({
        kind: 'taken',
        why: 'its rollups table was not made by Tally',
      });
    }
  });
});

describe('mayDrop', () => {
  it('drops only a keyspace the claimant owns and created', () => {
    const created = { owner: 'uid-1', keyspaceCreated: true };
    expect(mayDrop(claimOf(created, 'uid-1', 'rollups'))).toEqual({ drop: true });
    expect(mayDrop(claimOf({ ...created, keyspaceCreated: false }, 'uid-1', 'rollups'))).toEqual({
      drop: false,
      why: 'this CounterNamespace did not create it',
    });
    expect(mayDrop(claimOf(created, 'uid-2', 'rollups'))).toEqual({ drop: false, why: 'it belongs to uid-1' });
    expect(mayDrop(claimOf(undefined, 'uid-1', 'rollups'))).toEqual({ drop: false, why: 'it has no Tally tables' });
  });

  it('drops a keyspace without tables only when the claimant recorded creating it, and nothing else on that ground', () => {
    expect(mayDrop(claimOf(undefined, 'uid-1', 'rollups'), true)).toEqual({ drop: true });
    // Once a rollups table exists, what it records decides.
    const other = { owner: 'uid-2', keyspaceCreated: true };
    expect(mayDrop(claimOf(other, 'uid-1', 'rollups'), true)).toEqual({ drop: false, why: 'it belongs to uid-2' });
    const found = { owner: 'uid-1', keyspaceCreated: false };
    expect(mayDrop(claimOf(found, 'uid-1', 'rollups'), true)).toMatchObject({ drop: false });
  });
});
