import { policies, type Client } from 'cassandra-driver';
import type { NamespaceConfig } from '../../api/namespace-config';
import { eventBucket, timeBucket, timeBucketsBetween } from './buckets';
import { CoalescingClient } from './coalescing-client';
import { qualified } from '../../store/cql';
import { mapLimit } from '../../lib/concurrency';

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

/** What a write guarantees about the rollups row before its event is written (see widenBounds). */
export interface WriteBounds {
  lastWriteMs?: number;
  firstWriteMs?: number;
  clearMs?: number;
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
  /** Exact, however large: Cassandra sums the deltas as varint (its bigint sum wraps around silently). */
  sum: bigint;
  events: number;
  /** Partitions read (time buckets x event buckets). */
  partitions: number;
  /** Requests sent for them. */
  requests: number;
}

/**
 * first_write_time must keep the EARLIEST event time under last-write-wins, so it is written with a timestamp that
 * shrinks as the event time grows. Event times in microseconds stay far below this base until the year 2255.
 */
const INVERTED_TIMESTAMP_BASE = 2n ** 53n;
const micros = (ms: number): bigint => BigInt(ms) * 1000n;
const NO_RETRY = new policies.retry.FallthroughRetryPolicy();
/** Time buckets summed per request (each with all its event buckets). */
const TIME_BUCKETS_PER_REQUEST = 16;

/** A bigint, varint (the driver's Integer) or Long column value as a bigint; null as 0. */
function toBigInt(value: unknown): bigint {
  if (value === null || value === undefined) return 0n;
  // The driver's Long and Integer print their exact decimal value.
  return typeof value === 'bigint' ? value : BigInt((value as { toString(): string }).toString());
}

const ms = (d: unknown): number | undefined => (d instanceof Date ? d.getTime() : undefined);

/**
 * Reads and writes one namespace's events and rollups. Every statement is prepared; the only names in CQL text are
 * the namespace's keyspace and tables, checked against the identifier pattern.
 */
export class CounterStore {
  private readonly events: string;
  private readonly rollups: string;
  private readonly coalesced: CoalescingClient;
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
    this.coalesced = new CoalescingClient(client);
    this.events = qualified(keyspace, eventsTable);
    this.rollups = qualified(keyspace, rollupsTable);
    const partition = 'counter_name = ? AND time_bucket = ? AND event_bucket = ?';
    this.cql = {
      insertEvent: `INSERT INTO ${this.events} (counter_name, time_bucket, event_bucket, event_time, event_id, kind, delta) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      touchWrite: `UPDATE ${this.rollups} USING TIMESTAMP ? SET last_write_time = ? WHERE counter_name = ?`,
      touchFirstWrite: `UPDATE ${this.rollups} USING TIMESTAMP ? SET first_write_time = ? WHERE counter_name = ?`,
      touchClear: `UPDATE ${this.rollups} USING TIMESTAMP ? SET last_clear_time = ? WHERE counter_name = ?`,
      readRow: `SELECT rollup_count, rollup_time, first_write_time, last_write_time, last_clear_time FROM ${this.rollups} WHERE counter_name = ?`,
      // One request covers several time buckets and all their event buckets; Cassandra aggregates across them.
      sumWindow: `SELECT sum(CAST(delta AS varint)) AS s, count(*) AS n FROM ${this.events} WHERE counter_name = ? AND time_bucket IN ? AND event_bucket IN ? AND event_time > ? AND event_time <= ?`,
      clearsInWindow: `SELECT event_time FROM ${this.events} WHERE ${partition} AND event_time > ? AND event_time <= ? AND kind = 'clear' LIMIT 1 ALLOW FILTERING`,
      writeCheckpoint: `UPDATE ${this.rollups} USING TIMESTAMP ? SET rollup_count = ?, rollup_time = ? WHERE counter_name = ?`,
      pageRows: `SELECT counter_name, rollup_count, rollup_time, first_write_time, last_write_time, last_clear_time FROM ${this.rollups}`,
    };
  }

  /**
   * Widens the counter's write bounds in its rollups row: last_write_time to at least `lastWriteMs`, first_write_time
   * to at most `firstWriteMs`, and last_clear_time to at least `clearMs`. Each column is last-write-wins on a
   * timestamp derived from its value, so concurrent writers only ever widen them. One partition: one mutation.
   */
  async widenBounds(counter: string, bounds: WriteBounds): Promise<void> {
    const statements: { query: string; params: unknown[] }[] = [];
    if (bounds.lastWriteMs !== undefined) {
      statements.push({
        query: this.cql.touchWrite,
        params: [micros(bounds.lastWriteMs), new Date(bounds.lastWriteMs), counter],
      });
    }
    if (bounds.firstWriteMs !== undefined) {
      const t = micros(bounds.firstWriteMs);
      statements.push({
        query: this.cql.touchFirstWrite,
        params: [INVERTED_TIMESTAMP_BASE - t, new Date(bounds.firstWriteMs), counter],
      });
    }
    if (bounds.clearMs !== undefined) {
      statements.push({
        query: this.cql.touchClear,
        params: [micros(bounds.clearMs), new Date(bounds.clearMs), counter],
      });
    }
    if (statements.length === 0) return;
    await this.client.batch(statements, { prepare: true, logged: false, isIdempotent: true });
  }

  /** Writes the event row. Idempotent: a retry with the same token and time writes the same primary key. */
  async insertEvent(event: CounterEvent): Promise<void> {
    const { secondsPerBucket, bucketsPerCounter } = this.config.eventStorage;
    await this.coalesced.execute(
      this.cql.insertEvent,
      [
        event.counter,
        BigInt(timeBucket(event.eventTimeMs, secondsPerBucket)),
        eventBucket(event.eventId, bucketsPerCounter),
        new Date(event.eventTimeMs),
        event.eventId,
        event.kind,
        BigInt(event.delta),
      ],
      // No driver-side retry: a retry on another node could land after the event's window closed; clients retry
      // with the same token instead.
      { prepare: true, isIdempotent: true, retry: NO_RETRY },
    );
  }

  async readRow(counter: string): Promise<RollupRow> {
    const rs = await this.coalesced.execute(this.cql.readRow, [counter], { prepare: true, isIdempotent: true });
    const row = rs.first();
    return row ? this.toRollupRow(counter, row) : { counter };
  }

  private toRollupRow(counter: string, row: { get(name: string): unknown }): RollupRow {
    const rollupTime = ms(row.get('rollup_time'));
    const out: RollupRow = { counter };
    if (rollupTime !== undefined) {
      // Checkpoints are only ever written within the safe range (countAsOf refuses others).
      out.checkpoint = { count: Number(toBigInt(row.get('rollup_count'))), timeMs: rollupTime };
    }
    const first = ms(row.get('first_write_time'));
    const last = ms(row.get('last_write_time'));
    const clear = ms(row.get('last_clear_time'));
    if (first !== undefined) out.firstWriteMs = first;
    if (last !== undefined) out.lastWriteMs = last;
    if (clear !== undefined) out.lastClearMs = clear;
    return out;
  }

  /** Sum of deltas of the counter's events with time in (from, to], aggregated by Cassandra, one request per time bucket. */
  async sumWindow(
    counter: string,
    fromExclusiveMs: number,
    toInclusiveMs: number,
    parallelism = 16,
  ): Promise<WindowSum> {
    const { secondsPerBucket, bucketsPerCounter } = this.config.eventStorage;
    const timeBuckets = timeBucketsBetween(fromExclusiveMs, toInclusiveMs, secondsPerBucket).map(BigInt);
    const eventBuckets = Array.from({ length: bucketsPerCounter }, (_, eb) => eb);
    const from = new Date(fromExclusiveMs);
    const to = new Date(toInclusiveMs);
    // A long window (a counter written again after days) spans hundreds of mostly empty time buckets: a few requests
    // of many partitions each, instead of one round trip per time bucket.
    const chunks: bigint[][] = [];
    for (let i = 0; i < timeBuckets.length; i += TIME_BUCKETS_PER_REQUEST)
      chunks.push(timeBuckets.slice(i, i + TIME_BUCKETS_PER_REQUEST));
    const results = await mapLimit(chunks, parallelism, async (tbs) => {
      const rs = await this.coalesced.execute(this.cql.sumWindow, [counter, tbs, eventBuckets, from, to], {
        prepare: true,
        isIdempotent: true,
      });
      const row = rs.first();
      return { sum: toBigInt(row?.get('s')), events: Number(toBigInt(row?.get('n'))) };
    });
    let sum = 0n;
    let events = 0;
    for (const r of results) {
      sum += r.sum;
      events += r.events;
    }
    return { sum, events, partitions: timeBuckets.length * bucketsPerCounter, requests: chunks.length };
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
          const rs = await this.coalesced.execute(this.cql.clearsInWindow, [counter, BigInt(tb), eb, from, to], {
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
    await this.coalesced.execute(
      this.cql.writeCheckpoint,
      [micros(checkpoint.timeMs), BigInt(checkpoint.count), new Date(checkpoint.timeMs), counter],
      { prepare: true, isIdempotent: true },
    );
  }

  /** Every counter's rollup row, a page at a time (for the sweeper). */
  async *rows(pageSize = 500): AsyncGenerator<RollupRow> {
    let pageState: string | undefined;
    do {
      const rs = await this.coalesced.execute(this.cql.pageRows, [], {
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
