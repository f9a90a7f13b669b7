import type { Client } from 'cassandra-driver';

/** Cassandra's clock as this process sees it: cassandra time − local time, within ± uncertaintyMs. */
export interface ClockOffset {
  offsetMs: number;
  uncertaintyMs: number;
  /** Local time of the measurement. */
  measuredAtMs: number;
}

// The coordinator's wall clock in milliseconds. system.local is node-local: no replica is read.
const CASSANDRA_NOW = 'SELECT toUnixTimestamp(now()) AS t FROM system.local';

/**
 * Measures the offset of Cassandra's clock from `now` the way NTP does: the server's time is taken to fall in the
 * middle of the round trip, so the error is at most half of it (plus the millisecond Cassandra rounds to). The
 * sample with the shortest round trip wins: a slow one (GC pause, busy node) only widens the uncertainty.
 */
export async function measureClockOffset(
  client: Client,
  now: () => number = Date.now,
  samples = 5,
): Promise<ClockOffset> {
  let best: ClockOffset | undefined;
  for (let i = 0; i < samples; i++) {
    const sent = now();
    const rs = await client.execute(CASSANDRA_NOW, [], { prepare: true, isIdempotent: true });
    const received = now();
    const serverMs = Number(rs.first().get('t'));
    const uncertaintyMs = (received - sent) / 2 + 1;
    if (!best || uncertaintyMs < best.uncertaintyMs) {
      best = { offsetMs: serverMs - (sent + received) / 2, uncertaintyMs, measuredAtMs: received };
    }
  }
  if (!best) throw new Error('measureClockOffset needs at least one sample');
  return best;
}
