import type { Client, types } from 'cassandra-driver';
import { waitFor } from '../../stack/wait';
import type { Sent } from './load';

export interface LoggedEvent {
  counter: string;
  timeMs: number;
  token: string;
  kind: string;
  delta: number;
}

/** Every event in a namespace's log, read straight from Cassandra (the test keyspaces are small). */
export async function readEventLog(client: Client, keyspace: string): Promise<LoggedEvent[]> {
  const events: LoggedEvent[] = [];
  let pageState: string | undefined;
  do {
    const query = (): Promise<types.ResultSet> =>
      client.execute(`SELECT counter_name, event_time, event_id, kind, delta FROM ${keyspace}.events`, [], {
        prepare: true,
        fetchSize: 5000,
        ...(pageState ? { pageState } : {}),
      });
    // After a Cassandra restart this client may not have reconnected yet (its backoff reaches 10 s).
    const rs = await waitFor(`the event log of ${keyspace}`, query, { timeoutMs: 30_000, intervalMs: 500 });
    for (const row of rs.rows) {
      events.push({
        counter: row.get('counter_name') as string,
        timeMs: (row.get('event_time') as Date).getTime(),
        token: row.get('event_id') as string,
        kind: row.get('kind') as string,
        delta: Number(row.get('delta')),
      });
    }
    pageState = rs.pageState ?? undefined;
  } while (pageState);
  return events;
}

/** A counter's count by the API's rule: the deltas of the adds after its latest clear (ties go to the clear). */
export function countOf(events: LoggedEvent[]): number {
  const lastClear = Math.max(-Infinity, ...events.filter((e) => e.kind === 'clear').map((e) => e.timeMs));
  return events.filter((e) => e.kind === 'add' && e.timeMs > lastClear).reduce((sum, e) => sum + e.delta, 0);
}

export interface Verdict {
  /** Acknowledged requests whose event is not in the log. */
  lost: Sent[];
  /** Log entries no request of the client made, or that disagree with it (a double, a changed delta or time). */
  foreign: LoggedEvent[];
  /** The count the log says each counter has. */
  truth: Map<string, number>;
}

/**
 * Compares what the clients were told with what Cassandra holds: every acknowledged request must be in the log once,
 * with its time and delta; every entry must be one the clients sent (a failed one may or may not be there: at most
 * once, which the primary key guarantees). The count each counter must then read is computed from the log.
 */
export function judge(sent: Sent[], log: LoggedEvent[]): Verdict {
  const key = (counter: string, token: string) => `${counter}\0${token}`;
  const byToken = new Map(sent.map((s) => [key(s.counter, s.token), s]));
  const logged = new Map<string, LoggedEvent[]>();
  for (const e of log) logged.set(key(e.counter, e.token), [...(logged.get(key(e.counter, e.token)) ?? []), e]);
  const lost = sent.filter((s) => s.outcome === 'acked' && !logged.has(key(s.counter, s.token)));
  const foreign = log.filter((e) => {
    const s = byToken.get(key(e.counter, e.token));
    return !s || logged.get(key(e.counter, e.token))!.length > 1 || s.timeMs !== e.timeMs || s.delta !== e.delta;
  });
  const truth = new Map<string, number>();
  for (const counter of new Set(sent.map((s) => s.counter))) {
    truth.set(counter, countOf(log.filter((e) => e.counter === counter)));
  }
  return { lost, foreign, truth };
}
