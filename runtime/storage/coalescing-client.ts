import type { Client, QueryOptions, types } from 'cassandra-driver';

interface Pending {
  query: string;
  params: unknown[];
  options: QueryOptions;
  resolve: (rs: types.ResultSet) => void;
  reject: (err: unknown) => void;
}

/**
 * Sends the statements issued during one turn of the event loop together. Each HTTP request is handled in its own
 * I/O callback, so without this every statement becomes its own socket write (the driver only coalesces what is
 * queued within one tick) and Cassandra pays a wake-up per request. Deferring to setImmediate gathers them into one
 * socket write. The cost is at most one event-loop turn of latency. Statements stay separate requests, so
 * token-aware routing and per-statement errors are unchanged. (Sending them as one unlogged batch was measured
 * slower, and would tie unrelated writes' failures together.)
 */
export class CoalescingClient {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(readonly client: Client) {}

  execute(query: string, params: unknown[], options: QueryOptions): Promise<types.ResultSet> {
    return new Promise((resolve, reject) => {
      this.pending.push({ query, params, options, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    for (const p of batch) this.client.execute(p.query, p.params, p.options).then(p.resolve, p.reject);
  }
}
