import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { LeaderElector } from '../../../lib/kube/leader-election';
import type { TcpProxy } from '../../support/tcp-proxy';
import { waitFor } from '../../stack/wait';
import { proxiedKubeConfig, Recorder, stackKubeConfig, statusOf } from './kube-support';

// Short timings so takeovers happen in seconds; the ratios are those of the defaults (15 s / 10 s / 2 s).
const timings = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300, requestTimeoutMs: 1000 };

type Transition = { who: string; leads: boolean; at: number };

describe('LeaderElector against the real API server', () => {
  const kc = stackKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const run = randomUUID().slice(0, 8);
  const namespace = `tally-le-${run}`;
  const electors: LeaderElector[] = [];
  const proxies: TcpProxy[] = [];
  let sampler: NodeJS.Timeout | undefined;
  /** Moments when more than one elector considered itself leader; must stay empty. */
  const overlaps: string[] = [];
  let transitions: Recorder<Transition>;

  /** An elector for `lease`, recording its leadership transitions. */
  function elector(identity: string, lease: string, via: KubeConfig = kc): LeaderElector {
    const e = new LeaderElector({
      api: via.makeApiClient(CoordinationV1Api),
      namespace,
      name: lease,
      identity,
      ...timings,
      onStartedLeading: () => transitions.push({ who: identity, leads: true, at: performance.now() }),
      onStoppedLeading: () => transitions.push({ who: identity, leads: false, at: performance.now() }),
    });
    electors.push(e);
    return e;
  }

  /** Samples every elector every 5 ms: never two leaders at once. */
  function sampleLeaders(): void {
    sampler = setInterval(() => {
      const leaders = electors.filter((e) => e.isLeader).map((e) => e.identity);
      if (leaders.length > 1) overlaps.push(`${leaders.join(' and ')} at ${performance.now().toFixed(0)} ms`);
    }, 5);
  }

  const started = (who: string, from = 0) =>
    transitions.waitFor((t) => t.who === who && t.leads, `${who} leads`, 20_000, from);
  const stopped = (who: string, from = 0) =>
    transitions.waitFor((t) => t.who === who && !t.leads, `${who} stops leading`, 20_000, from);
  const holderOf = async (lease: string) =>
    (await coordination.readNamespacedLease({ name: lease, namespace })).spec?.holderIdentity;

  beforeAll(async () => {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });

  beforeEach(() => {
    transitions = new Recorder<Transition>();
    overlaps.length = 0;
    sampleLeaders();
  });

  afterEach(async () => {
    clearInterval(sampler);
    await Promise.all(electors.splice(0).map((e) => e.stop({ release: false })));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  afterAll(async () => {
    await statusOf(core.deleteNamespace({ name: namespace }));
  });

  it('elects exactly one of two candidates and hands over at once when the leader stops', async () => {
    const a = elector('a', 'handover');
    const b = elector('b', 'handover');
    a.start();
    b.start();
    const first = await transitions.waitFor((t) => t.leads, 'a leader', 10_000);
    const [leader, standby] = first.who === 'a' ? [a, b] : [b, a];
    expect(await holderOf('handover')).toBe(leader.identity);
    // Several renewals later: still the same single leader, the standby sees it, the Lease never changed hands.
    await waitFor('the standby sees the leader', () => standby.leader === leader.identity, {
      timeoutMs: 5000,
      intervalMs: 20,
    });
    await new Promise((r) => setTimeout(r, 5 * timings.retryPeriodMs));
    expect(leader.isLeader).toBe(true);
    expect(standby.isLeader).toBe(false);
    expect(transitions.items).toHaveLength(1);
    const lease = await coordination.readNamespacedLease({ name: 'handover', namespace });
    expect(lease.spec).toMatchObject({ holderIdentity: leader.identity, leaseDurationSeconds: 3, leaseTransitions: 0 });

    const stopAt = performance.now();
    await leader.stop(); // releases the Lease
    const takeover = await started(standby.identity);
    const takeoverMs = takeover.at - stopAt;
    expect(takeoverMs).toBeLessThan(1.2 * timings.retryPeriodMs + 500); // its next retry, not a lease duration
    expect(await holderOf('handover')).toBe(standby.identity);
    expect(overlaps).toEqual([]);
  });

  it('takes over from a crashed leader once its lease has expired, not before', async () => {
    const a = elector('a', 'crash');
    a.start();
    await started('a');
    const b = elector('b', 'crash');
    b.start();
    await waitFor('b sees a as leader', () => b.leader === 'a', { timeoutMs: 5000, intervalMs: 20 });

    const crashAt = performance.now();
    await a.stop({ release: false }); // stops renewing, leaves the Lease as it is
    const takeover = await started('b');
    const takeoverMs = takeover.at - crashAt;
    // b saw a's last renewal at most a (jittered) retry period before the crash, and waits a lease duration.
    expect(takeoverMs).toBeGreaterThanOrEqual(timings.leaseDurationMs - 1.2 * timings.retryPeriodMs - 50);
    expect(takeoverMs).toBeLessThan(timings.leaseDurationMs + 2 * timings.retryPeriodMs + 1000);
    const lease = await coordination.readNamespacedLease({ name: 'crash', namespace });
    expect(lease.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(overlaps).toEqual([]);
  });

  it('a leader cut off from the API server steps down before the standby takes over', async () => {
    const through = await proxiedKubeConfig(kc);
    proxies.push(through.proxy);
    const a = elector('a', 'partition', through.kubeConfig);
    a.start();
    await started('a');
    const b = elector('b', 'partition');
    b.start();
    await waitFor('b sees a as leader', () => b.leader === 'a', { timeoutMs: 5000, intervalMs: 20 });

    const cutAt = performance.now();
    through.proxy.cut(); // a keeps running but can no longer renew
    const aStopped = await stopped('a');
    const bStarted = await started('b');
    const stepDownMs = aStopped.at - cutAt;
    const takeoverMs = bStarted.at - cutAt;
    expect(stepDownMs).toBeLessThanOrEqual(timings.renewDeadlineMs + 250);
    expect(takeoverMs).toBeGreaterThanOrEqual(timings.leaseDurationMs - 1.2 * timings.retryPeriodMs - 50);
    expect(takeoverMs).toBeLessThan(timings.leaseDurationMs + 2 * timings.retryPeriodMs + 1000);
    expect(aStopped.at).toBeLessThan(bStarted.at);
    expect(overlaps).toEqual([]);

    // The network comes back: a finds b's live lease and stays a follower.
    through.proxy.restore();
    await waitFor('a sees b as leader', () => a.leader === 'b', { timeoutMs: 5000, intervalMs: 20 });
    expect(a.isLeader).toBe(false);
    expect(b.isLeader).toBe(true);
    expect(await holderOf('partition')).toBe('b');
    expect(overlaps).toEqual([]);
  });
});
