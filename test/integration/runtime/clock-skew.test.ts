import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { fakeTimeEnv } from '../../support/faketime';
import {
  call,
  dropKeyspaces,
  keyspaceOf,
  startProcess,
  uniqueSuffix,
  writeNamespaces,
  type ChildRuntime,
} from '../../support/runtime-harness';
import { waitFor } from '../../stack/wait';

/**
 * Two `tally serve` processes on one namespace, one of them with its wall clock shifted by libfaketime, as on a host
 * whose NTP is broken. FAST settings: accept limit 1 s, settle margin 1.2 s, Cassandra timeout 1 s, so a process may
 * be off by at most (1200 − 1000) / 2 = 100 ms.
 */
describe('a runtime whose clock is off', () => {
  const run = uniqueSuffix();
  const NS = `skew-${run}`;
  let dir: string;
  let good: ChildRuntime;
  const skewed: ChildRuntime[] = [];
  const tokenAt = (ms: number) => ({ token: randomUUID(), generation_time: new Date(ms).toISOString() });
  const add = (url: string, counter: string, atMs = Date.now()) =>
    call(url, 'AddCount', { namespace: NS, counter_name: counter, delta: 1, idempotency_token: tokenAt(atMs) });
  const readyz = async (url: string) =>
    (await (await fetch(`${url}/readyz`)).json()) as { checks: { clock: { ok: boolean; detail: string } } };
  const startSkewed = async (offset: string) => {
    const rt = await startProcess(dir, [NS], await fakeTimeEnv(offset));
    skewed.push(rt);
    return rt;
  };
  /** Waits for the good process's Eventual count to reach `want` (rollups every ~2.3 s); the last count if never. */
  const settlesAt = async (counter: string, want: number) => {
    let last: unknown;
    try {
      await waitFor(
        `the count of ${counter} to reach ${want}`,
        async () => {
          last = (await call(good.url, 'GetCount', { namespace: NS, counter_name: counter })).body.count;
          if (last !== want) throw new Error(`count ${String(last)}`);
          return true;
        },
        { timeoutMs: 12_000, intervalMs: 300 },
      );
    } catch {
      /* compared below */
    }
    return last;
  };

  beforeAll(async () => {
    dir = writeNamespaces([{ name: NS, counterType: 'Eventual' }]);
    good = await startProcess(dir, [NS]);
  });
  afterAll(async () => {
    await Promise.all([good?.stop(), ...skewed.map((s) => s.stop())]);
    fs.rmSync(dir, { recursive: true, force: true });
    await dropKeyspaces([keyspaceOf(NS)]);
  });

  it('a process on the same clock as Cassandra measures it and trusts it', async () => {
    const check = (await readyz(good.url)).checks.clock;
    expect(check.ok).toBe(true);
    const offset = /clock is ([+-][\d.]+) ms/.exec(check.detail);
    expect(Math.abs(Number(offset?.[1]))).toBeLessThan(50);
  });

  it('ahead by 3 s: it writes no checkpoint past events the others still accept, and says why', async () => {
    const ahead = await startSkewed('+3s');
    const counter = `ahead-${randomUUID()}`;
    expect((await add(good.url, counter)).status).toBe(200);
    // Its rollup would checkpoint at true time + 0.8 s, past the adds below.
    // Its rollup would checkpoint at true time + 0.8 s, past the adds below; and its accept window is 3 s ahead.
    const read = await call(ahead.url, 'GetCount', { namespace: NS, counter_name: counter });
    const aheadAdd = await add(ahead.url, counter, Date.now() + 3000);
    for (let i = 0; i < 5; i++) expect((await add(good.url, counter)).status).toBe(200);
    // The truth: every add answered 200 (without the guard, the adds after its checkpoint are never counted).
    const acknowledged = 6 + (aheadAdd.status === 200 ? 1 : 0);
    expect(await settlesAt(counter, acknowledged)).toBe(acknowledged);
    expect(read.status).toBe(503);
    expect(read.body).toMatchObject({
      error: {
        code: 'UNAVAILABLE',
        message: expect.stringMatching(/writing checkpoints is held.*clock is -(29|30)\d\d\.\d ms/),
      },
    });
    expect(read.headers.get('retry-after')).toBe('5');
    expect(aheadAdd.status).toBe(503);

    const check = (await readyz(ahead.url)).checks.clock;
    expect(check).toMatchObject({
      ok: false,
      detail: expect.stringContaining(`beyond the 100 ms bound of namespace ${NS}`),
    });
    const metrics = await (await fetch(`${ahead.url}/metrics`)).text();
    const offset = Number(/^tally_clock_offset_seconds ([-\d.e]+)$/m.exec(metrics)?.[1]);
    expect(offset).toBeGreaterThan(-3.2);
    expect(offset).toBeLessThan(-2.8);
    expect(metrics).toMatch(new RegExp(`tally_rollups_total\\{namespace="${NS}",result="held"\\} [1-9]`));
  });

  it('behind by 3 s: it accepts no event the others have already checkpointed past', async () => {
    const behind = await startSkewed('-3s');
    const counter = `behind-${randomUUID()}`;
    expect((await add(good.url, counter)).status).toBe(200);
    expect(await settlesAt(counter, 1)).toBe(1);
    // A client on the same wrong clock: its token is within the skewed process's window, 3 s in everyone's past.
    const late = await add(behind.url, counter, Date.now() - 3000);
    expect((await add(good.url, counter)).status).toBe(200);
    const acknowledged = 2 + (late.status === 200 ? 1 : 0);
    expect(await settlesAt(counter, acknowledged)).toBe(acknowledged);
    expect(late.status).toBe(503);
    expect(late.body).toMatchObject({ error: { message: expect.stringContaining('accepting events is held') } });
  });
});
