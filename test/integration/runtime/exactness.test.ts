import { randomUUID } from 'node:crypto';
import {
  call,
  dropKeyspaces,
  FAST,
  keyspaceOf,
  startProcess,
  uniqueSuffix,
  writeNamespaces,
  type ChildRuntime,
  type TestNamespace,
} from '../../support/runtime-harness';
import { waitFor } from '../../stack/wait';

/**
 * Randomized workloads through two `tally serve` processes at once: concurrent adds with negative deltas, clears, and
 * the same token retried by several clients against both processes. Every counter must end equal to the ground
 * truth the test computes from the events it sent: at once for Accurate, after rollup for Eventual.
 */

interface Op {
  counter: string;
  kind: 'add' | 'clear';
  delta: number;
  token: string;
  time: string;
}

/** The count the design defines: the sum of the adds strictly after the latest clear (ties go to the clear). */
function truth(ops: Op[]): Map<string, number> {
  const byCounter = new Map<string, Op[]>();
  for (const op of ops) byCounter.set(op.counter, [...(byCounter.get(op.counter) ?? []), op]);
  const out = new Map<string, number>();
  for (const [counter, list] of byCounter) {
    const unique = new Map(list.map((o) => [`${o.time}|${o.token}`, o]));
    const events = [...unique.values()];
    const lastClear = Math.max(-Infinity, ...events.filter((o) => o.kind === 'clear').map((o) => Date.parse(o.time)));
    out.set(
      counter,
      events.filter((o) => o.kind === 'add' && Date.parse(o.time) > lastClear).reduce((s, o) => s + o.delta, 0),
    );
  }
  return out;
}

/** A seeded generator, so a failing run can be replayed with the seed it prints. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Sends every op with `copies(i)` copies racing each other across both processes, some copies delayed, as a client
 * that hedges and retries would. The generation time is taken when the op is first sent, as a client would.
 */
async function runWorkload(
  urls: string[],
  namespace: string,
  ops: Op[],
  copies: (i: number) => number,
  concurrency: number,
): Promise<void> {
  const random = rng(ops.length);
  const send = async (url: string, op: Op): Promise<void> => {
    const idempotency_token = { token: op.token, generation_time: op.time };
    const reply =
      op.kind === 'add'
        ? await call(url, 'AddCount', { namespace, counter_name: op.counter, delta: op.delta, idempotency_token })
        : await call(url, 'ClearCount', { namespace, counter_name: op.counter, idempotency_token });
    if (reply.status !== 200)
      throw new Error(`${op.kind} ${op.counter} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ops.length) {
        const i = next++;
        const op = ops[i]!;
        op.time = new Date().toISOString();
        await Promise.all(
          Array.from({ length: copies(i) }, async (_, c) => {
            if (c > 0 && random() < 0.5) await new Promise((r) => setTimeout(r, Math.floor(random() * 300)));
            await send(urls[(i + c) % urls.length]!, op);
          }),
        );
      }
    }),
  );
}

/** Ops whose generation time is set when they are sent. */
function makeOps(random: () => number, counters: string[], n: number, clearRate: number): Op[] {
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    const counter = counters[Math.floor(random() * counters.length)]!;
    const kind = random() < clearRate ? 'clear' : 'add';
    const delta = kind === 'add' ? Math.floor(random() * 2001) - 1000 : 0;
    ops.push({ counter, kind, delta, token: randomUUID(), time: '' });
  }
  return ops;
}

async function counts(url: string, namespace: string, counters: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const c of counters)
    out.set(c, (await call(url, 'GetCount', { namespace, counter_name: c })).body.count as number);
  return out;
}

function diff(expected: Map<string, number>, actual: Map<string, number>): string {
  return [...expected]
    .filter(([c, v]) => actual.get(c) !== v)
    .map(([c, v]) => `${c}: expected ${v}, got ${actual.get(c)}`)
    .join('; ');
}

describe('exactness under concurrency, retries and two runtime processes', () => {
  const run = uniqueSuffix();
  // A 3 s accept limit leaves room for the delayed retries under load.
  const spec = { eventStorage: { ...FAST.eventStorage, acceptLimitSeconds: 3 }, rollup: FAST.rollup };
  const eventual: TestNamespace = { name: `ex-ev-${run}`, counterType: 'Eventual', spec };
  const accurate: TestNamespace = { name: `ex-ac-${run}`, counterType: 'Accurate', spec };
  const seed = Number.parseInt(run, 16);
  let dir: string;
  let a: ChildRuntime;
  let b: ChildRuntime;

  beforeAll(async () => {
    dir = writeNamespaces([eventual, accurate]);
    // One process first: both would race to create the same tables otherwise (harmless, but slower).
    a = await startProcess(dir, [eventual.name, accurate.name]);
    b = await startProcess(dir, [eventual.name, accurate.name]);
  });
  afterAll(async () => {
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    await dropKeyspaces([keyspaceOf(eventual.name), keyspaceOf(accurate.name)]);
  });

  it.each([
    ['Accurate', accurate],
    ['Eventual', eventual],
  ])(
    '%s: random adds, negative deltas, clears and duplicated tokens add up exactly (seed printed on failure)',
    async (type, ns) => {
      const random = rng(seed + type.length);
      const counters = Array.from({ length: 8 }, (_, i) => `c${i}-${randomUUID().slice(0, 8)}`);
      const ops = makeOps(random, counters, 400, 0.03);
      // A third of the requests are sent 2-4 times, to both processes, concurrently.
      await runWorkload(
        [a.url, b.url],
        ns.name,
        ops,
        (i) => (i % 3 === 0 ? 2 + (i % 3) + Math.floor(random() * 2) : 1),
        24,
      );
      const expected = truth(ops);
      if (type === 'Accurate') {
        expect(diff(expected, await counts(a.url, ns.name, counters))).toBe('');
        expect(diff(expected, await counts(b.url, ns.name, counters))).toBe('');
      } else {
        // Each process converges on its own: one may answer from its near cache for nearCacheSeconds after the
        // other already sees the last rollup.
        for (const rt of [a, b]) {
          await waitFor(`Eventual counters to converge at ${rt.url} (seed ${seed})`, async () => {
            const differences = diff(expected, await counts(rt.url, ns.name, counters));
            if (differences) throw new Error(differences);
            return true;
          });
        }
      }
    },
  );

  it('an idempotency storm (every request 5 times, both processes) changes nothing', async () => {
    const counter = `storm-${randomUUID()}`;
    const random = rng(seed);
    const ops = makeOps(random, [counter], 150, 0);
    await runWorkload([a.url, b.url], accurate.name, ops, () => 5, 32);
    const once = truth(ops).get(counter)!;
    expect((await call(a.url, 'GetCount', { namespace: accurate.name, counter_name: counter })).body.count).toBe(once);
  });
});
