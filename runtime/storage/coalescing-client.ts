import type { Client, QueryOptions, types } from 'cassandra-driver';

interface Pending {
  query: string;
  params: unknown[];
  options: QueryOptions;
  resolve: (rs: types.ResultSet) => void;
  reject: (err: unknown) => void;
}

/**
 * Cassandra's default warning thresholds for an unlogged batch (unlogged_batch_across_partitions_warn_threshold and
 * batch_size_warn_threshold: 10 partitions, 5 KiB). Staying under them keeps the server log quiet.
 */
export const MAX_WRITES_PER_BATCH = 10;

/**
 * Sends the statements issued during one turn of the event loop together. Each HTTP request is handled in its own
 * I/O callback, so without this every statement becomes its own socket write (the driver only coalesces what is
 * queued within one tick) and Cassandra pays a wake-up per request. Deferring to setImmediate gathers them into one
 * socket write. The cost is at most one event-loop turn of latency.
 *
 * Reads stay separate requests. Writes given to `write` go as unlogged batches of up to MAX_WRITES_PER_BATCH, which
 * saves Cassandra its per-request cost; a failed batch fails each of its writes, and their callers retry them
 * idempotently.
 */
export class CoalescingClient {
  private pending: Pending[] = [];
  private writes: Pending[] = [];
  private scheduled = false;

  constructor(readonly client: Client) {}

  execute(query: string, params: unknown[], options: QueryOptions): Promise<types.ResultSet> {
    return this.enqueue(this.pending, query, params, options);
  }

  /** An idempotent write that may share an unlogged batch with others of this turn (all with the same options). */
  write(query: string, params: unknown[], options: QueryOptions): Promise<types.ResultSet> {
    return this.enqueue(this.writes, query, params, options);
  }

  private enqueue(into: Pending[], query: string, params: unknown[], options: QueryOptions): Promise<types.ResultSet> {
    return new Promise((resolve, reject) => {
      into.push({ query, params, options, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const reads = this.pending;
    const writes = this.writes;
    this.pending = [];
    this.writes = [];
    this.scheduled = false;
    for (const p of reads) this.client.execute(p.query, p.params, p.options).then(p.resolve, p.reject);
    for (let i = 0; i < writes.length; i += MAX_WRITES_PER_BATCH) {
      const group = writes.slice(i, i + MAX_WRITES_PER_BATCH);
      if (group.length === 1) {
        const p = group[0]!;
        this.client.execute(p.query, p.params, p.options).then(p.resolve, p.reject);
        continue;
      }
      this.client
        .batch(
          group.map((p) => ({ query: p.query, params: p.params })),
          { ...group[0]!.options, logged: false },
        )
        .then(
          (rs) => group.forEach((p) => p.resolve(rs)),
          (err: unknown) => group.forEach((p) => p.reject(err)),
        );
    }
  }
}
