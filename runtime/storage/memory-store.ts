import type { NamespaceConfig } from '../../api/namespace-config';
import { timeBucketsBetween } from './buckets';
import type { Checkpoint, CounterEvent, CounterStore, RollupRow, WindowSum, WriteBounds } from './counter-store';

type Method = 'widenBounds' | 'insertEvent' | 'readRow' | 'sumWindow' | 'latestClearIn' | 'writeCheckpoint' | 'rows';

/**
 * CounterStore's reads and writes over two in-memory maps, with the same rules as the tables (last-write-wins bounds
 * that only widen, events keyed by counter, time and token, checkpoints whose rollup time is their write timestamp):
 * the fake the unit tests of the counter types, the rollup and the sweeper run against. `calls` records every call;
 * `failNext` makes the next call of a method reject; `before` runs a hook (a delay, a clock step) at each call.
 */
export class MemoryCounterStore {
  readonly events = new Map<string, CounterEvent>();
  readonly table = new Map<string, RollupRow>();
  readonly calls: { method: Method; counter?: string; args: unknown }[] = [];
  readonly before: Partial<Record<Method, () => unknown>> = {};
  private readonly failures = new Map<Method, unknown>();

  constructor(readonly config: NamespaceConfig) {}

  /** This fake where code wants a CounterStore (whose private members no structural fake can have). */
  get store(): CounterStore {
    return this as unknown as CounterStore;
  }

  failNext(method: Method, err: unknown): void {
    this.failures.set(method, err);
  }

  private async enter(method: Method, counter: string | undefined, args: unknown): Promise<void> {
    this.calls.push({ method, ...(counter !== undefined ? { counter } : {}), args });
    await this.before[method]?.();
    if (this.failures.has(method)) {
      const err = this.failures.get(method);
      this.failures.delete(method);
      throw err;
    }
  }

  private row(counter: string): RollupRow {
    let row = this.table.get(counter);
    if (!row) this.table.set(counter, (row = { counter }));
    return row;
  }

  async widenBounds(counter: string, bounds: WriteBounds): Promise<void> {
    await this.enter('widenBounds', counter, bounds);
    const row = this.row(counter);
    if (bounds.lastWriteMs !== undefined) row.lastWriteMs = Math.max(bounds.lastWriteMs, row.lastWriteMs ?? -Infinity);
    if (bounds.firstWriteMs !== undefined)
      row.firstWriteMs = Math.min(bounds.firstWriteMs, row.firstWriteMs ?? Infinity);
    if (bounds.clearMs !== undefined) row.lastClearMs = Math.max(bounds.clearMs, row.lastClearMs ?? -Infinity);
  }

  async insertEvent(event: CounterEvent): Promise<void> {
    await this.enter('insertEvent', event.counter, event);
    this.events.set(`${event.counter}\u0000${event.eventTimeMs}\u0000${event.eventId}`, { ...event });
  }

  async readRow(counter: string): Promise<RollupRow> {
    await this.enter('readRow', counter, undefined);
    return this.copy(counter);
  }

  private copy(counter: string): RollupRow {
    const row = this.table.get(counter);
    return row ? { ...row, ...(row.checkpoint ? { checkpoint: { ...row.checkpoint } } : {}) } : { counter };
  }

  private eventsIn(counter: string, fromExclusiveMs: number, toInclusiveMs: number): CounterEvent[] {
    return [...this.events.values()].filter(
      (e) => e.counter === counter && e.eventTimeMs > fromExclusiveMs && e.eventTimeMs <= toInclusiveMs,
    );
  }

  async sumWindow(counter: string, fromExclusiveMs: number, toInclusiveMs: number): Promise<WindowSum> {
    await this.enter('sumWindow', counter, [fromExclusiveMs, toInclusiveMs]);
    const hits = this.eventsIn(counter, fromExclusiveMs, toInclusiveMs);
    const { secondsPerBucket, bucketsPerCounter } = this.config.eventStorage;
    const timeBuckets = timeBucketsBetween(fromExclusiveMs, toInclusiveMs, secondsPerBucket).length;
    return {
      sum: hits.reduce((s, e) => s + BigInt(e.delta), 0n),
      events: hits.length,
      partitions: timeBuckets * bucketsPerCounter,
      requests: Math.ceil(timeBuckets / 16),
    };
  }

  async latestClearIn(counter: string, fromExclusiveMs: number, toInclusiveMs: number): Promise<number | undefined> {
    await this.enter('latestClearIn', counter, [fromExclusiveMs, toInclusiveMs]);
    const clears = this.eventsIn(counter, fromExclusiveMs, toInclusiveMs).filter((e) => e.kind === 'clear');
    return clears.length ? Math.max(...clears.map((e) => e.eventTimeMs)) : undefined;
  }

  async writeCheckpoint(counter: string, checkpoint: Checkpoint): Promise<void> {
    await this.enter('writeCheckpoint', counter, checkpoint);
    const row = this.row(counter);
    // The rollup time is the write timestamp: an older rollup never replaces a newer one.
    if (!row.checkpoint || row.checkpoint.timeMs <= checkpoint.timeMs) row.checkpoint = { ...checkpoint };
  }

  async *rows(): AsyncGenerator<RollupRow> {
    await this.enter('rows', undefined, undefined);
    for (const counter of [...this.table.keys()]) yield this.copy(counter);
  }

  /** The calls of one method so far. */
  callsOf(method: Method): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }
}
