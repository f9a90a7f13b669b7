import { ApiException, type V1Lease } from '@kubernetes/client-node';
import * as os from 'node:os';
import { defaultIdentity, LeaderElector, type LeaderElectionOptions, type LeaseApi } from './leader-election';

/** One Lease kept like the API server keeps it: JSON on the wire, a resourceVersion checked on every write. */
class LeaseStore {
  lease: V1Lease | undefined;
  private rv = 0;
  writes: V1Lease[] = [];

  read(): V1Lease {
    if (!this.lease) throw new ApiException(404, 'not found', '{"message":"not found"}', {});
    return JSON.parse(JSON.stringify(this.lease)) as V1Lease;
  }

  create(body: V1Lease): V1Lease {
    if (this.lease) throw new ApiException(409, 'exists', '{"message":"already exists"}', {});
    return this.store(body);
  }

  replace(body: V1Lease): V1Lease {
    if (!this.lease) throw new ApiException(404, 'not found', '{}', {});
    if (body.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion) {
      throw new ApiException(409, 'conflict', '{"message":"the object has been modified"}', {});
    }
    return this.store(body);
  }

  private store(body: V1Lease): V1Lease {
    const wire = JSON.parse(JSON.stringify(body)) as V1Lease; // what the API server would receive
    wire.metadata = { ...wire.metadata, resourceVersion: String(++this.rv) };
    this.lease = wire;
    this.writes.push(wire);
    return JSON.parse(JSON.stringify(wire)) as V1Lease;
  }
}

/** One process's view of the store, with faults to inject: failing or hanging requests. */
function client(store: LeaseStore, faults: { fail?: boolean; hang?: boolean; beforeReplace?: () => void } = {}) {
  const guard = async <R>(fn: () => R): Promise<R> => {
    if (faults.hang) return new Promise<R>(() => undefined);
    if (faults.fail) throw new Error('connect ECONNREFUSED');
    return fn();
  };
  const api: LeaseApi = {
    readNamespacedLease: () => guard(() => store.read()),
    createNamespacedLease: (p) => guard(() => store.create(p.body)),
    replaceNamespacedLease: (p) =>
      guard(() => {
        faults.beforeReplace?.();
        return store.replace(p.body);
      }),
  };
  return { api, faults };
}

const timings = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500, requestTimeoutMs: 400 };

describe('LeaderElector', () => {
  let store: LeaseStore;
  const electors: LeaderElector[] = [];

  function elector(identity: string, api: LeaseApi, extra: Partial<LeaderElectionOptions> = {}): LeaderElector {
    const e = new LeaderElector({ api, namespace: 'ns', name: 'lock', identity, ...timings, ...extra });
    electors.push(e);
    return e;
  }

  beforeEach(() => {
    jest.useFakeTimers();
    store = new LeaseStore();
  });

  afterEach(async () => {
    const stopping = Promise.all(electors.splice(0).map((e) => e.stop({ release: false })));
    await jest.advanceTimersByTimeAsync(1000);
    await stopping;
    jest.useRealTimers();
  });

  it('creates the lease, leads, and renews it every retry period with MicroTime stamps', async () => {
    const signals: AbortSignal[] = [];
    const a = elector('a', client(store).api, { onStartedLeading: (s) => void signals.push(s) });
    a.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(a.isLeader).toBe(true);
    expect(a.leader).toBe('a');
    expect(signals).toHaveLength(1);
    expect(store.lease?.spec).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 3, leaseTransitions: 0 });
    // The API server only parses MicroTime with six fractional digits (client-node's Date gives three).
    expect(store.lease?.spec?.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    const writes = store.writes.length;
    await jest.advanceTimersByTimeAsync(2000);
    expect(store.writes.length - writes).toBe(4);
    expect(a.isLeader).toBe(true);
    expect(signals).toHaveLength(1);
    expect(store.lease?.spec?.leaseTransitions).toBe(0);
  });

  it('leaves a renewed lease alone and takes it only a lease duration after the holder stops renewing', async () => {
    const a = elector('a', client(store).api);
    a.start();
    await jest.advanceTimersByTimeAsync(0);
    const newLeaders: (string | undefined)[] = [];
    const b = elector('b', client(store).api, { onNewLeader: (l) => newLeaders.push(l) });
    b.start();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    expect(b.leader).toBe('a');

    await a.stop({ release: false }); // a crash: no more renewals, no release
    const crashedAt = Date.now();
    const lastRenewal = store.lease!.metadata!.resourceVersion;
    let tookOverAt = 0;
    while (!b.isLeader) {
      await jest.advanceTimersByTimeAsync(50);
      if (Date.now() - crashedAt > 10_000) throw new Error('b never took over');
    }
    tookOverAt = Date.now();
    // a's last renewal was at most a retry period before the crash; b saw it at its next (jittered) poll, waited a
    // full lease duration from then, and noticed the expiry at the poll after.
    expect(tookOverAt - crashedAt).toBeGreaterThanOrEqual(timings.leaseDurationMs - timings.retryPeriodMs);
    expect(tookOverAt - crashedAt).toBeLessThanOrEqual(timings.leaseDurationMs + 2 * 1.2 * timings.retryPeriodMs + 50);
    expect(store.lease?.metadata?.resourceVersion).not.toBe(lastRenewal);
    expect(store.lease?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(store.lease?.spec?.acquireTime).toBe(store.lease?.spec?.renewTime);
    expect(newLeaders).toEqual(['a', 'b']);
  });

  it('releases the lease on stop, after onStoppedLeading, so a standby takes it at its next retry', async () => {
    const events: string[] = [];
    const a = elector('a', client(store).api, {
      onStoppedLeading: async () => {
        events.push(`a stopping, holder ${store.lease?.spec?.holderIdentity}`);
        await new Promise((r) => setTimeout(r, 100));
        events.push('a stopped');
      },
    });
    a.start();
    await jest.advanceTimersByTimeAsync(0);
    const b = elector('b', client(store).api, { onStartedLeading: () => void events.push('b leads') });
    b.start();
    await jest.advanceTimersByTimeAsync(1000);

    const stopping = a.stop();
    await jest.advanceTimersByTimeAsync(100);
    await stopping;
    expect(a.isLeader).toBe(false);
    expect(store.lease?.spec?.holderIdentity).toBeUndefined();
    const releasedAt = Date.now();
    while (!b.isLeader) await jest.advanceTimersByTimeAsync(10);
    expect(Date.now() - releasedAt).toBeLessThanOrEqual(1.2 * timings.retryPeriodMs + 10);
    expect(events).toEqual(['a stopping, holder a', 'a stopped', 'b leads']);
  });

  it('steps down when renewals fail for the renew deadline, before the lease can expire for others', async () => {
    const faults = client(store);
    let stoppedAt = 0;
    const signals: AbortSignal[] = [];
    const a = elector('a', faults.api, {
      onStartedLeading: (s) => void signals.push(s),
      onStoppedLeading: () => void (stoppedAt = Date.now()),
    });
    a.start();
    await jest.advanceTimersByTimeAsync(0);
    const renewedAt = Date.now();
    faults.faults.fail = true;
    await jest.advanceTimersByTimeAsync(timings.renewDeadlineMs + 100);
    expect(a.isLeader).toBe(false);
    expect(signals[0]!.aborted).toBe(true);
    expect(stoppedAt - renewedAt).toBeLessThanOrEqual(timings.renewDeadlineMs);
    expect(stoppedAt - renewedAt).toBeLessThan(timings.leaseDurationMs);

    // Once the API answers again and the lease is still its own, it leads again.
    faults.faults.fail = false;
    await jest.advanceTimersByTimeAsync(1000);
    expect(a.isLeader).toBe(true);
    expect(signals).toHaveLength(2);
  });

  it('steps down on time even when a renewal request hangs', async () => {
    const faults = client(store);
    let stoppedAt = 0;
    const a = elector('a', faults.api, {
      requestTimeoutMs: 60_000, // the request never gives up by itself
      onStoppedLeading: () => void (stoppedAt = Date.now()),
    });
    a.start();
    await jest.advanceTimersByTimeAsync(0);
    const renewedAt = Date.now();
    faults.faults.hang = true;
    await jest.advanceTimersByTimeAsync(timings.renewDeadlineMs + 10);
    expect(a.isLeader).toBe(false);
    expect(stoppedAt).toBeGreaterThan(0); // the callback ran although the renewal is still hanging
    expect(stoppedAt - renewedAt).toBeLessThanOrEqual(timings.renewDeadlineMs);
    faults.faults.hang = false;
    await jest.advanceTimersByTimeAsync(60_000); // let the hung request time out before afterEach stops it
  });

  it('loses a race for the lease without an exception (409) and does not lead', async () => {
    const b = client(store);
    const eB = elector('b', b.api);
    // Between b's read and b's write, c takes the free lease.
    let once = true;
    b.faults.beforeReplace = () => {
      if (!once) return;
      once = false;
      store.replace({ ...store.read(), spec: { holderIdentity: 'c', leaseDurationSeconds: 3 } });
    };
    store.create({ metadata: { name: 'lock', namespace: 'ns' }, spec: {} }); // exists, no holder
    eB.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(eB.isLeader).toBe(false);
    expect(store.lease?.spec?.holderIdentity).toBe('c');
    await jest.advanceTimersByTimeAsync(2000); // c's lease is not expired yet for b
    expect(eB.isLeader).toBe(false);
  });

  it('checks its timings and names itself after the host and process by default', () => {
    const { api } = client(store);
    expect(() => new LeaderElector({ api, namespace: 'n', name: 'l', leaseDurationMs: 10_000 })).toThrow(
      /lease duration must be longer than the renew deadline/,
    );
    expect(() => new LeaderElector({ api, namespace: 'n', name: 'l', retryPeriodMs: 9000 })).toThrow(/1.2/);
    expect(new LeaderElector({ api, namespace: 'n', name: 'l' }).identity).toBe(`${os.hostname()}_${process.pid}`);
    expect(defaultIdentity()).toBe(`${os.hostname()}_${process.pid}`);
  });
});
