import type { Client } from 'cassandra-driver';
import type { NamespaceConfig } from '../namespace/config';
import { eventBucket, timeBucket, timeBucketsBetween } from './buckets';
import { qualified } from './cql';

export type EventKind = 'add' | 'clear';

export interface CounterEvent {
  counter: string;
  eventTimeMs: number;
  /** The idempotency token: with eventTimeMs it is the event's primary key, so a retry rewrites the same row. */
  eventId: string;
  kind: EventKind;
  /** 0 for clears. */
  delta: number;
}

/** The rolled-up count of a counter as of (and including) timeMs. */
export interface Checkpoint {
  count: number;
  timeMs: number;
}

/** A counter's row in the rollups table. */
export interface RollupRow {
  counter: string;
  checkpoint?: Checkpoint;
  firstWriteMs?: number;
  lastWriteMs?: number;
  lastClearMs?: number;
}

export interface WindowSum {
  sum: number;
  events: number;
  /** Partitions read (time buckets x event buckets). */
  partitions: number;
}

/**
 * first_write_time must keep the EARLIEST event time under last-write-wins, so it is written with a timestamp that
 * shrinks as the event time grows. Event times in microseconds stay far below this base until the year 2255.
 */
const INVERTED_TIMESTAMP_BASE = 2n ** 53n;
const micros = (ms: number): bigint => BigInt(ms) * 1000n;

function toSafeNumber(value: unknown, what: string): number {
  if (value === null || value === undefined) return 0;
  const n = typeof value === 'bigint' ? value : BigInt(value as number);
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new Error(`${what} ${n} is outside the exact integer range of a JSON number`);
  }
  return Number(n);
}

const ms = (d: unknown): number | undefined => (d instanceof Date ? d.getTime() : undefined);

/** Bounded parallelism for the per-partition reads of a window. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}

/**
 * Reads and writes one namespace's events and rollups. Every statement is prepared; the only names in CQL text are
 * the namespace's keyspace and tables, checked against the identifier pattern.
 */
export class CounterStore {
  private readonly events: string;
  private readonly rollups: string;
  private readonly cql: {
    insertEvent: string;
    touchWrite: string;
    touchFirstWrite: string;
    touchClear: string;
    readRow: string;
    sumWindow: string;
    clearsInWindow: string;
    writeCheckpoint: string;
    pageRows: string;
  };

  constructor(
    private readonly client: Client,
    readonly config: NamespaceConfig,
  ) {
    const { keyspace, eventsTable, rollupsTable } = config.cassandra;
    this.events = qualified(keyspace, eventsTable);
    this.rollups = qualified(keyspace, rollupsTable);
    const partition = 'counter_name = ? AND time_bucket = ? AND event_bucket = ?';
    this.cql = {
      insertEvent: `INSERT INTO ${this.events} (counter_name, time_bucket, event_bucket, event_time, event_id, kind, delta) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      touchWrite: `UPDATE ${this.rollups} USING TIMESTAMP ? SET last_write_time = ? WHERE counter_name = ?`,
      touchFirstWrite: `UPDATE ${this.rollups} USING TIMESTAMP ? SET first_write_time = ? WHERE counter_name = ?`,
      touchClear: `UPDATE ${this.rollups} USING TIMESTAMP ? SET last_clear_time = ? WHERE counter_name = ?`,
      readRow: `SELECT rollup_count, rollup_time, first_write_time, last_write_time, last_clear_time FROM ${this.rollups} WHERE counter_name = ?`,
      sumWindow: `SELECT sum(delta) AS s, count(*) AS n FROM ${this.events} WHERE ${partition} AND event_time > ? AND event_time <= ?`,
      clearsInWindow: `SELECT event_time FROM ${this.events} WHERE ${partition} AND event_time > ? AND event_time <= ? AND kind = 'clear' LIMIT 1 ALLOW FILTERING`,
      writeCheckpoint: `UPDATE ${this.rollups} USING TIMESTAMP ? SET rollup_count = ?, rollup_time = ? WHERE counter_name = ?`,
      pageRows: `SELECT counter_name, rollup_count, rollup_time, first_write_time, last_write_time, last_clear_time FROM ${this.rollups}`,
    };
  }

  /**
   * Records the counter's write bounds first, then the event: if the event write fails after the bounds landed, a
   * rollup merely looks at a window with nothing new; the other order could leave an acknowledged event outside the
   * first rollup's window. `firstWriteKnown` skips the first-write update when this process already stored an
   * earlier-or-equal bound (it only ever moves earlier).
   */
  async append(event: CounterEvent, firstWriteKnown = false): Promise<void> {
    const t = micros(event.eventTimeMs);
    const when = new Date(event.eventTimeMs);
    const bounds: { query: string; params: unknown[] }[] = [
      { query: this.cql.touchWrite, params: [t, when, event.counter] },
    ];
    if (!firstWriteKnown)
      bounds.push({ query: this.cql.touchFirstWrite, params: [INVERTED_TIMESTAMP_BASE - t, when, event.counter] });
    if (event.kind === 'clear') bounds.push({ query: this.cql.touchClear, params: [t, when, event.counter] });
    // One partition, so an unlogged batch is a single mutation.
    await this.client.batch(bounds, { prepare: true, logged: false, isIdempotent: true });
    const { secondsPerBucket, bucketsPerCounter } = this.config.eventStorage;
    await this.client.execute(
      this.cql.insertEvent,
      [
        event.counter,
        BigInt(timeBucket(event.eventTimeMs, secondsPerBucket)),
        eventBucket(event.eventId, bucketsPerCounter),
        when,
        event.eventId,
        event.kind,
        BigInt(event.delta),
      ],
      { prepare: true, isIdempotent: true },
    );
  }

  async readRow(counter: string): Promise<RollupRow> {
    const rs = await this.client.execute(this.cql.readRow, [counter], { prepare: true, isIdempotent: true });
    const row = rs.first();
    return row ? this.toRollupRow(counter, row) : { counter };
  }

  private toRollupRow(counter: string, row: { get(name: string): unknown }): RollupRow {
    const rollupTime = ms(row.get('rollup_time'));
    const out: RollupRow = { counter };
    if (rollupTime !== undefined)
      out.checkpoint = { count: toSafeNumber(row.get('rollup_count'), 'rollup_count'), timeMs: rollupTime };
    const first = ms(row.get('first_write_time'));
    const last = ms(row.get('last_write_time'));
    const clear = ms(row.get('last_clear_time'));
    if (first !== undefined) out.firstWriteMs = first;
    if (last !== undefined) out.lastWriteMs = last;
    if (clear !== undefined) out.lastClearMs = clear;
    return out;
  }

  private partitions(counter: string, fromExclusiveMs: number, toInclusiveMs: number): [string, bigint, number][] {
    const { secondsPerBucket, bucketsPerCounter } = this.config.eventStorage;
    const out: [string, bigint, number][] = [];
    for (const tb of timeBucketsBetween(fromExclusiveMs, toInclusiveMs, secondsPerBucket)) {
      for (let eb = 0; eb < bucketsPerCounter; eb++) out.push([counter, BigInt(tb), eb]);
    }
    return out;
  }

  /** Sum of deltas of the counter's events with time in (from, to], aggregated by Cassandra per partition. */
  async sumWindow(
    counter: string,
    fromExclusiveMs: number,
    toInclusiveMs: number,
    parallelism = 16,
  ): Promise<WindowSum> {
    const parts = this.partitions(counter, fromExclusiveMs, toInclusiveMs);
    const from = new Date(fromExclusiveMs);
    const to = new Date(toInclusiveMs);
    const results = await mapLimit(parts, parallelism, async (p) => {
      const rs = await this.client.execute(this.cql.sumWindow, [...p, from, to], { prepare: true, isIdempotent: true });
      const row = rs.first();
      return { sum: toSafeNumber(row?.get('s'), 'sum of deltas'), events: toSafeNumber(row?.get('n'), 'event count') };
    });
    let sum = 0;
    let events = 0;
    for (const r of results) {
      sum += r.sum;
      events += r.events;
    }
    if (!Number.isSafeInteger(sum)) throw new Error(`the count of ${counter} left the exact integer range`);
    return { sum, events, partitions: parts.length };
  }

  /** The time of the latest clear in (from, to], or undefined. Scans newest time bucket first and stops early. */
  async latestClearIn(counter: string, fromExclusiveMs: number, toInclusiveMs: number): Promise<number | undefined> {
    const { secondsPerBucket, bucketsPerCounter } = this.config.eventStorage;
    const buckets = timeBucketsBetween(fromExclusiveMs, toInclusiveMs, secondsPerBucket).reverse();
    const from = new Date(fromExclusiveMs);
    const to = new Date(toInclusiveMs);
    for (const tb of buckets) {
      const found = await Promise.all(
        Array.from({ length: bucketsPerCounter }, async (_, eb) => {
          const rs = await this.client.execute(this.cql.clearsInWindow, [counter, BigInt(tb), eb, from, to], {
            prepare: true,
            isIdempotent: true,
          });
          return ms(rs.first()?.get('event_time'));
        }),
      );
      const times = found.filter((t): t is number => t !== undefined);
      if (times.length > 0) return Math.max(...times);
    }
    return undefined;
  }

  /** Stores a checkpoint; the write timestamp is the rollup time, so an older rollup can never overwrite a newer one. */
  async writeCheckpoint(counter: string, checkpoint: Checkpoint): Promise<void> {
    await this.client.execute(
      this.cql.writeCheckpoint,
      [micros(checkpoint.timeMs), BigInt(checkpoint.count), new Date(checkpoint.timeMs), counter],
      { prepare: true, isIdempotent: true },
    );
  }

  /** Every counter's rollup row, a page at a time (for the sweeper). */
  async *rows(pageSize = 500): AsyncGenerator<RollupRow> {
    let pageState: string | undefined;
    do {
      const rs = await this.client.execute(this.cql.pageRows, [], {
        prepare: true,
        fetchSize: pageSize,
        ...(pageState ? { pageState } : {}),
        isIdempotent: true,
      });
      for (const row of rs.rows) yield this.toRollupRow(row.get('counter_name') as string, row);
      pageState = rs.pageState ?? undefined;
    } while (pageState);
  }
}
