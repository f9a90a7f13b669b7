import { performance } from 'node:perf_hooks';
import type { Gauge } from 'prom-client';
import type { ClockOffset } from '../../store/clock';
import { messageOf } from '../../lib/errors';
import type { Logger } from '../../lib/log';
import { ClockUntrustedError } from '../errors';

/** What durable counters ask before they accept an event or write a checkpoint. */
export interface ClockTrust {
  /** Throws ClockUntrustedError unless this process's clock is known to be within boundMs of Cassandra's. */
  assertWithin(boundMs: number, namespace: string, doing: string): void;
}

export interface ClockCheck {
  ok: boolean;
  detail: string;
}

export interface ClockGuardOptions {
  measure: () => Promise<ClockOffset>;
  log: Logger;
  gauges?: { offset: Gauge; uncertainty: Gauge };
  /** The clock the process counts with (Date.now, or the runtime's injected clock). */
  now?: () => number;
  /** A clock that never steps, to notice the wall clock stepping between measurements. */
  monotonic?: () => number;
  intervalMs?: number;
  /** A measurement older than this no longer vouches for the clock. */
  maxAgeMs?: number;
}

/** A wall clock that moved this much against the monotonic one since the measurement stepped (NTP, a VM resume). */
const STEP_TOLERANCE_MS = 20;
/** How fast two quartz clocks may drift apart (100 ppm, a generous bound): a reading's uncertainty grows with its age. */
const DRIFT_MS_PER_MS = 1e-4;
/** A refusal measures again when the reading is at least this old. */
const REMEASURE_ON_HOLD_MS = 1000;
/** A refusal is logged at most this often per namespace and operation. */
const LOG_EVERY_MS = 30_000;

const fmt = (ms: number): string => `${ms >= 0 ? '+' : ''}${ms.toFixed(1)} ms`;

/**
 * Knows how far this process's clock is from Cassandra's. Rollups checkpoint up to now − accept limit − settle
 * margin on the rolling process's clock, and events are accepted by the accepting process's clock: a process whose
 * clock is off by more than a namespace's bound (rollup.ts clockOffsetBoundMs) would checkpoint past events still
 * being accepted, or accept events already checkpointed past. So it does neither until a measurement says its clock
 * is within the bound: checkpoints wait, writes answer 503. Measured at start and every intervalMs; a step of the
 * wall clock moves the offset at once (by the step, read against the monotonic clock) and is measured again.
 */
export class ClockGuard implements ClockTrust {
  private reading: (ClockOffset & { wallMinusMono: number }) | undefined;
  private lastError = 'not measured yet';
  private timer: NodeJS.Timeout | undefined;
  private measuring: Promise<void> | undefined;
  private readonly logged = new Map<string, number>();
  private readonly now: () => number;
  private readonly monotonic: () => number;
  private readonly intervalMs: number;
  private readonly maxAgeMs: number;

  constructor(private readonly opts: ClockGuardOptions) {
    this.now = opts.now ?? Date.now;
    this.monotonic = opts.monotonic ?? (() => performance.now());
    this.intervalMs = opts.intervalMs ?? 5000;
    this.maxAgeMs = opts.maxAgeMs ?? 60_000;
  }

  /** Takes the first measurement (a failure is kept as the reason, not thrown), then measures periodically. */
  async start(): Promise<void> {
    await this.measureNow();
    this.timer = setInterval(() => void this.measureNow(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One measurement at a time; callers during one share it. */
  measureNow(): Promise<void> {
    this.measuring ??= this.opts
      .measure()
      .then((offset) => {
        const previous = this.current();
        // A busy moment gives only slow round trips: the previous reading, aged, may still be the better one (not
        // after a step, which this measurement is there to confirm).
        if (previous && !this.stepped() && previous.uncertaintyMs <= offset.uncertaintyMs) return;
        this.reading = { ...offset, wallMinusMono: this.wallMinusMono() };
        this.opts.gauges?.offset.set(offset.offsetMs / 1000);
        this.opts.gauges?.uncertainty.set(offset.uncertaintyMs / 1000);
        if (!previous) this.opts.log.info(this.fields(), 'offset from Cassandra clock measured');
      })
      .catch((err: unknown) => {
        this.lastError = `measuring it failed: ${messageOf(err)}`;
      })
      .finally(() => (this.measuring = undefined));
    return this.measuring;
  }

  /**
   * The latest measurement, its uncertainty grown by the drift since and its offset moved by any step of the wall
   * clock since (a step also starts a new measurement), unless it is too old.
   */
  current(): ClockOffset | undefined {
    const r = this.reading;
    if (!r) return undefined;
    const ageMs = this.now() - r.measuredAtMs;
    if (ageMs > this.maxAgeMs) {
      this.lastError = 'the last measurement is too old';
      this.reading = undefined;
      void this.measureNow();
      return undefined;
    }
    const stepMs = this.wallMinusMono() - r.wallMinusMono;
    if (Math.abs(stepMs) > STEP_TOLERANCE_MS) void this.measureNow();
    return {
      offsetMs: r.offsetMs - stepMs,
      uncertaintyMs: r.uncertaintyMs + Math.max(0, ageMs) * DRIFT_MS_PER_MS,
      measuredAtMs: r.measuredAtMs,
    };
  }

  /** Whether the wall clock moved against the monotonic one since the reading by more than a read can explain. */
  private stepped(): boolean {
    return (
      this.reading !== undefined && Math.abs(this.wallMinusMono() - this.reading.wallMinusMono) > STEP_TOLERANCE_MS
    );
  }

  /**
   * The wall clock minus the monotonic one, read between two monotonic reads; the tightest of three pairs, so that
   * the process being descheduled between the reads (tens of ms on a busy machine) cannot pass for a step.
   */
  private wallMinusMono(): number {
    let best = Infinity;
    let value = 0;
    for (let i = 0; i < 3 && best > 1; i++) {
      const before = this.monotonic();
      const wall = this.now();
      const after = this.monotonic();
      if (after - before < best) {
        best = after - before;
        value = wall - (before + after) / 2;
      }
    }
    return value;
  }

  /** Whether the clock is known to be within boundMs of Cassandra's; `bound` names the bound in the detail. */
  check(boundMs: number, bound = `the ${boundMs} ms bound`): ClockCheck {
    const r = this.current();
    if (!r) return { ok: false, detail: `offset from Cassandra's clock unknown: ${this.lastError}` };
    const ok = Math.abs(r.offsetMs) + r.uncertaintyMs <= boundMs;
    return {
      ok,
      detail:
        `Cassandra's clock is ${fmt(r.offsetMs)} from this process's (± ${r.uncertaintyMs.toFixed(1)} ms), ` +
        `${ok ? 'within' : 'beyond'} ${bound}`,
    };
  }

  assertWithin(boundMs: number, namespace: string, doing: string): void {
    const verdict = this.check(boundMs);
    if (verdict.ok) return;
    const now = this.now();
    // A hold may come of one slow measurement (its uncertainty): measure again soon rather than in up to 5 s.
    if (now - (this.reading?.measuredAtMs ?? -Infinity) >= REMEASURE_ON_HOLD_MS) void this.measureNow();
    const key = `${namespace}\0${doing}`;
    if (now - (this.logged.get(key) ?? -Infinity) >= LOG_EVERY_MS) {
      this.logged.set(key, now);
      this.opts.log.warn({ namespace, doing, ...this.fields(), boundMs }, `${doing} held: ${verdict.detail}`);
    }
    throw new ClockUntrustedError(`${doing} is held in namespace ${namespace}: ${verdict.detail}`);
  }

  private fields(): Record<string, number | string> {
    const r = this.reading;
    return r ? { offsetMs: r.offsetMs, uncertaintyMs: r.uncertaintyMs } : { clock: this.lastError };
  }
}
