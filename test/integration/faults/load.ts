import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

/** One AddCount, ClearCount or GetCount as the client saw it, after all its retries. */
export interface Sent {
  namespace: string;
  counter: string;
  kind: 'add' | 'clear' | 'read';
  delta: number;
  token: string;
  timeMs: number;
  /** acked: some attempt answered 200; failed: the client gave up (its add may still have been applied once). */
  outcome: 'acked' | 'failed';
  attempts: number;
  /** Every status or error an attempt ended with. */
  answers: string[];
}

export interface LoadOptions {
  /** The runtimes to spread requests over; read on every attempt, so a scenario may swap one out. */
  urls: () => string[];
  counters: { namespace: string; counter: string }[];
  clients: number;
  /** Tokens are retried while younger than this (the namespace's accept limit less a safety second). */
  retryForMs: number;
  /** Client-side timeout of one attempt. */
  attemptTimeoutMs: number;
  clearEvery: number;
  /** Every this many requests a GetCount, which also triggers rollups wherever it lands. */
  readEvery: number;
}

/**
 * Clients that behave as the README asks: every add carries a token made once; on 503, a timeout or a connection
 * error the same token is sent again (to the next runtime) until it is too old for the accept window. Every request
 * and its fate is recorded; the test compares them with what Cassandra holds.
 */
export class Load {
  readonly sent: Sent[] = [];
  /** Local times of every acknowledged write, to find the longest stretch without one. */
  readonly okTimes: number[] = [];
  retries = 0;
  private running = false;
  private loops: Promise<void>[] = [];
  private next = 0;

  constructor(private readonly opts: LoadOptions) {}

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.opts.clients }, (_, i) => this.client(i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async client(seed: number): Promise<void> {
    let n = seed;
    while (this.running) {
      n++;
      const target = this.opts.counters[n % this.opts.counters.length]!;
      const kind = n % this.opts.clearEvery === 0 ? 'clear' : n % this.opts.readEvery === 0 ? 'read' : 'add';
      const record: Sent = {
        ...target,
        kind,
        delta: kind === 'add' ? 1 + (n % 9) : 0,
        token: randomUUID(),
        timeMs: Date.now(),
        outcome: 'failed',
        attempts: 0,
        answers: [],
      };
      this.sent.push(record);
      await this.deliver(record);
      await sleep(5);
    }
  }

  private async deliver(r: Sent): Promise<void> {
    const body = JSON.stringify({
      namespace: r.namespace,
      counter_name: r.counter,
      ...(r.kind === 'add' ? { delta: r.delta } : {}),
      ...(r.kind === 'read'
        ? {}
        : { idempotency_token: { token: r.token, generation_time: new Date(r.timeMs).toISOString() } }),
    });
    const op = { add: 'AddCount', clear: 'ClearCount', read: 'GetCount' }[r.kind];
    while (Date.now() - r.timeMs < this.opts.retryForMs) {
      const urls = this.opts.urls();
      const url = urls[this.next++ % urls.length]!;
      r.attempts++;
      if (r.attempts > 1) this.retries++;
      let answer: string;
      try {
        const res = await fetch(`${url}/v1/counter/${op}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(this.opts.attemptTimeoutMs),
        });
        await res.arrayBuffer();
        answer = String(res.status);
      } catch (err) {
        answer = (err as Error).name === 'TimeoutError' ? 'timeout' : 'connection error';
      }
      r.answers.push(answer);
      if (answer === '200') {
        r.outcome = 'acked';
        if (r.kind !== 'read') this.okTimes.push(Date.now());
        return;
      }
      // Only unavailability is worth retrying; any other answer is final.
      if (!['503', 'timeout', 'connection error'].includes(answer)) return;
      await sleep(100);
    }
  }

  /** The longest time, in ms, in which no request was acknowledged, between the first and the last acknowledgement. */
  longestGapMs(): number {
    const t = [...this.okTimes].sort((a, b) => a - b);
    let gap = 0;
    for (let i = 1; i < t.length; i++) gap = Math.max(gap, t[i]! - t[i - 1]!);
    return gap;
  }
}
