import { AccessReviewer, type AccessRequest, type Identity, type ReviewApi } from './access-review';

/** A review API that answers from tables and counts its calls; `gate` holds answers back until released. */
function fakeApi(tokens: Record<string, Identity>, allow: (i: Identity, r: AccessRequest) => boolean) {
  const calls = { token: 0, access: 0 };
  let failing = false;
  let gate: Promise<void> = Promise.resolve();
  const api: ReviewApi = {
    async reviewToken(token) {
      calls.token++;
      await gate;
      if (failing) throw new Error('API server down');
      return tokens[token];
    },
    async reviewAccess(identity, request) {
      calls.access++;
      await gate;
      if (failing) throw new Error('API server down');
      return { allowed: allow(identity, request) };
    },
  };
  return {
    api,
    calls,
    fail: (on: boolean) => (failing = on),
    hold: () => {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return release;
    },
  };
}

const alice: Identity = { username: 'alice', groups: ['team-a'] };
const get = (namespace: string): AccessRequest => ({
  resource: { group: 'g', resource: 'r', verb: 'get', namespace, name: 'n' },
});

describe('AccessReviewer', () => {
  it('asks the cluster once per token and per decision while the answers are fresh', async () => {
    const fake = fakeApi({ t1: alice }, (_i, r) => 'resource' in r && r.resource.namespace === 'a');
    const reviewer = new AccessReviewer(fake.api, { cacheMs: 60_000, maxEntries: 100 });
    for (let i = 0; i < 5; i++) {
      expect(await reviewer.authenticate('t1')).toEqual(alice);
      expect(await reviewer.authorize(alice, get('a'))).toEqual({ allowed: true });
      expect(await reviewer.authorize(alice, get('b'))).toEqual({ allowed: false });
    }
    expect(fake.calls).toEqual({ token: 1, access: 2 });
  });

  it('remembers a refused token too, and answers undefined for it', async () => {
    const fake = fakeApi({}, () => true);
    const reviewer = new AccessReviewer(fake.api, { cacheMs: 60_000, maxEntries: 100 });
    expect(await reviewer.authenticate('forged')).toBeUndefined();
    expect(await reviewer.authenticate('forged')).toBeUndefined();
    expect(fake.calls.token).toBe(1);
  });

  it('shares one call among concurrent lookups of the same key', async () => {
    const fake = fakeApi({ t1: alice }, () => true);
    const reviewer = new AccessReviewer(fake.api, { cacheMs: 60_000, maxEntries: 100 });
    const release = fake.hold();
    const all = Promise.all(Array.from({ length: 20 }, () => reviewer.authorize(alice, get('a'))));
    release();
    expect((await all).every((d) => d.allowed)).toBe(true);
    expect(fake.calls.access).toBe(1);
  });

  it('asks again once the answer is older than cacheMs', async () => {
    // Real time: lru-cache keeps its own reference to performance.now, which fake timers do not reach.
    const fake = fakeApi({ t1: alice }, () => true);
    const reviewer = new AccessReviewer(fake.api, { cacheMs: 200, maxEntries: 100 });
    await reviewer.authorize(alice, get('a'));
    await reviewer.authorize(alice, get('a'));
    expect(fake.calls.access).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    await reviewer.authorize(alice, get('a'));
    expect(fake.calls.access).toBe(2);
  });

  it('does not cache a failed call: the next lookup asks again', async () => {
    const fake = fakeApi({ t1: alice }, () => true);
    const outcomes: string[] = [];
    const reviewer = new AccessReviewer(fake.api, {
      cacheMs: 60_000,
      maxEntries: 100,
      onReview: (review, outcome) => outcomes.push(`${review}:${outcome}`),
    });
    fake.fail(true);
    await expect(reviewer.authenticate('t1')).rejects.toThrow('API server down');
    fake.fail(false);
    expect(await reviewer.authenticate('t1')).toEqual(alice);
    expect(outcomes).toEqual(['token:error', 'token:authenticated']);
  });

  it('keeps at most maxEntries decisions', async () => {
    const fake = fakeApi({}, () => true);
    const reviewer = new AccessReviewer(fake.api, { cacheMs: 60_000, maxEntries: 2 });
    for (const ns of ['a', 'b', 'c', 'a']) await reviewer.authorize(alice, get(ns));
    // a was the least recently used when c came: it is asked again.
    expect(fake.calls.access).toBe(4);
  });

  it('with cacheMs 0 asks every time', async () => {
    const fake = fakeApi({ t1: alice }, () => true);
    const reviewer = new AccessReviewer(fake.api, { cacheMs: 0, maxEntries: 100 });
    await reviewer.authenticate('t1');
    await new Promise((r) => setTimeout(r, 5));
    await reviewer.authenticate('t1');
    expect(fake.calls.token).toBe(2);
  });

  it('tells decisions of different identities apart', async () => {
    const bob: Identity = { username: 'bob', groups: [] };
    const fake = fakeApi({}, (i) => i.username === 'alice');
    const reviewer = new AccessReviewer(fake.api, { cacheMs: 60_000, maxEntries: 100 });
    expect((await reviewer.authorize(alice, get('a'))).allowed).toBe(true);
    expect((await reviewer.authorize(bob, get('a'))).allowed).toBe(false);
  });
});
