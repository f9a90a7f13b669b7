import type { CounterStore } from '../storage/counter-store';

/**
 * Bounds are written rounded outwards to this grain, so one write covers every event of a counter in the same
 * 10-second slot: a hot counter costs one rollups-row write per slot per process instead of one per event. A looser
 * bound only makes a rollup look at a slightly wider window or the sweeper visit a counter once more.
 */
export const BOUND_GRAIN_MS = 10_000;

/** Remembered counters per namespace; the oldest are forgotten first (costing one extra bounds write). */
const MEMORY = 100_000;

interface Known {
  lastWriteMs: number;
  firstWriteMs: number;
  /** The write that established these bounds; later events wait on it, so none is acknowledged before its bound. */
  written: Promise<void>;
}

/**
 * Makes sure a counter's rollups row has first_write_time <= t <= last_write_time before an event at t is written,
 * writing the bounds only when what this process already wrote (or is writing) does not cover t.
 */
export class WriteBoundsCache {
  private readonly known = new Map<string, Known>();

  constructor(private readonly store: CounterStore) {}

  async cover(counter: string, eventTimeMs: number): Promise<void> {
    let k = this.known.get(counter);
    if (k) {
      try {
        await k.written;
      } catch {
        k = undefined; // That write failed: this event writes its own bounds.
      }
      if (k && k.firstWriteMs <= eventTimeMs && eventTimeMs <= k.lastWriteMs) return;
    }
    const lastWriteMs = Math.ceil((eventTimeMs + 1) / BOUND_GRAIN_MS) * BOUND_GRAIN_MS;
    const firstWriteMs = Math.floor(eventTimeMs / BOUND_GRAIN_MS) * BOUND_GRAIN_MS;
    const written = this.store.widenBounds(counter, {
      lastWriteMs,
      // The first bound only moves earlier: once written, only an earlier event needs to write it again.
      ...(k === undefined || firstWriteMs < k.firstWriteMs ? { firstWriteMs } : {}),
    });
    const entry: Known = {
      lastWriteMs: Math.max(lastWriteMs, k?.lastWriteMs ?? -Infinity),
      firstWriteMs: Math.min(firstWriteMs, k?.firstWriteMs ?? Infinity),
      written,
    };
    this.known.delete(counter);
    if (this.known.size >= MEMORY) this.known.delete(this.known.keys().next().value!);
    this.known.set(counter, entry);
    try {
      await written;
    } catch (err) {
      if (this.known.get(counter) === entry) this.known.delete(counter);
      throw err;
    }
  }
}
