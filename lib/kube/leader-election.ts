import { V1MicroTime, type CoordinationV1Api, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import * as os from 'node:os';
import type { Logger } from 'pino';
import { asError } from '../errors';
import { bounded, errorMessage, httpStatus } from './request';

/** The Lease calls the elector makes (a CoordinationV1Api does; tests pass fakes). */
export type LeaseApi = Pick<
  CoordinationV1Api,
  'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'
>;

export interface LeaderElectionOptions {
  /** `kubeConfig.makeApiClient(CoordinationV1Api)`. */
  api: LeaseApi;
  namespace: string;
  /** The Lease's name: every process of one operator uses the same. */
  name: string;
  /** Who this process is in the Lease. Default: hostname_pid. */
  identity?: string;
  /** How long a lease holds without renewal before another process may take it. Default 15 s. */
  leaseDurationMs?: number;
  /** The leader gives up leadership when it has not renewed for this long. Default 10 s (< the lease duration). */
  renewDeadlineMs?: number;
  /** Between attempts to acquire or renew. Default 2 s. */
  retryPeriodMs?: number;
  /** Bound on one API request. Default: the retry period, at least 1 s. */
  requestTimeoutMs?: number;
  /** Called on becoming leader; `signal` aborts when leadership ends. Not awaited. */
  onStartedLeading?: (signal: AbortSignal) => void | Promise<void>;
  /** Called when leadership ends (lost or stopped); the elector waits for it before releasing the Lease. */
  onStoppedLeading?: () => void | Promise<void>;
  /** Called when the holder seen in the Lease changes (undefined: nobody). */
  onNewLeader?: (identity: string | undefined) => void;
  logger?: Logger;
}

/** One attempt: became or stayed leader; someone else holds a live lease; or the attempt failed (retry). */
type Attempt = 'ok' | 'held' | 'failed';

export function defaultIdentity(): string {
  return `${os.hostname()}_${process.pid}`;
}

/** A MicroTime as the API server parses it (RFC 3339 with exactly six fractional digits). */
export function microTime(ms = Date.now()): V1MicroTime {
  return new V1MicroTime(ms);
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package:
 * - a candidate reads the Lease every retry period and takes it when it is free, released (no holder), or has not
 *   changed for a lease duration as observed on this process's own clock (no clock comparison between machines);
 * - every write carries the resourceVersion read, so two candidates racing for one Lease cannot both win (409);
 * - the leader renews every retry period and steps down when it has not renewed for the renew deadline — by a
 *   timer, so a hung request cannot keep it leading — which is before any other process may take the Lease;
 * - stop() ends leadership (waiting for onStoppedLeading) and then releases the Lease, so a standby takes over at
 *   its next retry instead of after the lease duration.
 */
export class LeaderElector {
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly requestTimeoutMs: number;
  private readonly log: Logger | undefined;

  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly stopController = new AbortController();
  private leading = false;
  private lastRenewAt = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private leaderAbort: AbortController | undefined;
  private steppingDown: Promise<void> | undefined;
  /** The Lease as last read or written, and when (local monotonic clock) its content last changed. */
  private observed: V1Lease | undefined;
  private observedAt = 0;
  private observedHolder: string | undefined;

  constructor(private readonly options: LeaderElectionOptions) {
    this.identity = options.identity ?? defaultIdentity();
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? Math.max(1_000, this.retryPeriodMs);
    if (!(this.leaseDurationMs > this.renewDeadlineMs)) {
      throw new Error('leader election: the lease duration must be longer than the renew deadline');
    }
    if (!(this.renewDeadlineMs > 1.2 * this.retryPeriodMs)) {
      throw new Error('leader election: the renew deadline must be longer than 1.2 × the retry period');
    }
    if (this.leaseDurationMs < 1000) throw new Error('leader election: the lease duration is at least 1 s');
    this.log = options.logger?.child({ lease: `${options.namespace}/${options.name}`, identity: this.identity });
  }

  /** True while this process holds the Lease and has renewed it within the renew deadline. */
  get isLeader(): boolean {
    return this.leading && performance.now() - this.lastRenewAt < this.renewDeadlineMs;
  }

  /** The holder last seen in the Lease (this process's identity when it leads). */
  get leader(): string | undefined {
    return this.observedHolder;
  }

  /** Starts campaigning (once). */
  start(): void {
    if (this.stopping) throw new Error('leader elector stopped');
    this.loop ??= this.run();
  }

  /**
   * Stops campaigning; if leading, ends leadership (awaiting onStoppedLeading) and, unless `release` is false, then
   * releases the Lease so that a standby takes over at once. `release: false` leaves the Lease to expire, as a
   * crashed process would.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopping = true;
    this.stopController.abort();
    await this.loop;
    await this.stepDown('stopping');
    if (opts.release ?? true) await this.release();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await this.steppingDown;
      const attemptAt = performance.now();
      const attempt = await this.tryAcquireOrRenew();
      if (this.stopping) break;
      if (attempt === 'ok') {
        this.becomeLeader(attemptAt);
        await this.renewWhileLeading();
        continue;
      }
      await this.sleep(this.retryPeriodMs * (1 + 0.2 * Math.random()));
    }
  }

  private becomeLeader(renewedAt: number): void {
    this.leading = true;
    this.lastRenewAt = renewedAt;
    this.armDeadline();
    const abort = new AbortController();
    this.leaderAbort = abort;
    this.log?.info('became leader');
    void Promise.resolve()
      .then(() => this.options.onStartedLeading?.(abort.signal))
      .catch((err: unknown) => this.log?.error({ err }, 'onStartedLeading failed'));
  }

  private async renewWhileLeading(): Promise<void> {
    while (this.leading && !this.stopping) {
      await this.sleep(this.retryPeriodMs);
      if (!this.leading || this.stopping) return;
      const attemptAt = performance.now();
      const attempt = await this.tryAcquireOrRenew();
      if (!this.leading || this.stopping) return;
      if (attempt === 'ok') {
        this.lastRenewAt = attemptAt;
        this.armDeadline();
      } else if (attempt === 'held') {
        await this.stepDown('another process holds the lease');
      }
      // 'failed': try again next period; the deadline timer ends leadership if renewals keep failing.
    }
  }

  /** The renew deadline, counted from when the last successful renewal was sent. */
  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    const remaining = this.lastRenewAt + this.renewDeadlineMs - performance.now();
    this.deadlineTimer = setTimeout(() => void this.stepDown('renew deadline passed'), Math.max(0, remaining));
  }

  private stepDown(reason: string): Promise<void> {
    if (!this.leading) return this.steppingDown ?? Promise.resolve();
    this.leading = false;
    clearTimeout(this.deadlineTimer);
    this.leaderAbort?.abort();
    this.log?.info({ reason }, 'stopped leading');
    this.steppingDown = Promise.resolve()
      .then(() => this.options.onStoppedLeading?.())
      .catch((err: unknown) => this.log?.error({ err }, 'onStoppedLeading failed'));
    return this.steppingDown;
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    let lease: V1Lease;
    try {
      lease = await this.call((o) =>
        this.options.api.readNamespacedLease({ name: this.options.name, namespace: this.options.namespace }, o),
      );
    } catch (err) {
      if (httpStatus(err) !== 404) return this.failedAttempt('read', err);
      const now = microTime();
      try {
        const created = await this.call((o) =>
          this.options.api.createNamespacedLease(
            {
              namespace: this.options.namespace,
              body: {
                metadata: { name: this.options.name, namespace: this.options.namespace },
                spec: {
                  holderIdentity: this.identity,
                  leaseDurationSeconds: this.leaseDurationSeconds(),
                  acquireTime: now,
                  renewTime: now,
                  leaseTransitions: 0,
                },
              },
            },
            o,
          ),
        );
        this.observe(created);
        return 'ok';
      } catch (createErr) {
        return this.failedAttempt('create', createErr);
      }
    }
    this.observe(lease);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity || undefined;
    if (holder !== undefined && holder !== this.identity && !this.expired(lease)) return 'held';

    const now = microTime();
    const mine = holder === this.identity;
    try {
      const updated = await this.replaceLease(lease, {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationSeconds(),
        renewTime: now,
        acquireTime: mine ? spec.acquireTime : now,
        leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      });
      this.observe(updated);
      return 'ok';
    } catch (err) {
      return this.failedAttempt('update', err);
    }
  }

  /** Gives the Lease up if this process still holds it: no holder, so any candidate may take it at once. */
  private async release(): Promise<void> {
    // Not the holder at the last read or write: nothing to give up. (A write that succeeded after the elector gave up
    // waiting for it is not known here; that lease simply expires.)
    if (this.observed?.spec?.holderIdentity !== this.identity) return;
    try {
      const lease = await this.call((o) =>
        this.options.api.readNamespacedLease({ name: this.options.name, namespace: this.options.namespace }, o),
      );
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = microTime();
      const released = await this.replaceLease(lease, {
        ...lease.spec,
        holderIdentity: undefined,
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
      });
      this.observe(released);
      this.log?.info('released the lease');
    } catch (err) {
      // The lease then expires by itself.
      this.log?.warn({ err: errorMessage(err) }, 'could not release the lease');
    }
  }

  /** Writes the Lease with a new spec. Its metadata.resourceVersion is the one read: the write fails with 409 if anyone wrote since. */
  private replaceLease(lease: V1Lease, spec: V1LeaseSpec): Promise<V1Lease> {
    return this.call((o) =>
      this.options.api.replaceNamespacedLease(
        { name: this.options.name, namespace: this.options.namespace, body: { ...lease, spec } },
        o,
      ),
    );
  }

  /** Records the Lease read or written; its content changing restarts the expiry clock. */
  private observe(lease: V1Lease): void {
    const changed =
      !this.observed ||
      this.observed.metadata?.resourceVersion !== lease.metadata?.resourceVersion ||
      this.observed.spec?.holderIdentity !== lease.spec?.holderIdentity;
    this.observed = lease;
    if (!changed) return;
    this.observedAt = performance.now();
    const holder = lease.spec?.holderIdentity || undefined;
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      this.log?.debug({ holder }, 'new leader observed');
      try {
        this.options.onNewLeader?.(holder);
      } catch (err) {
        this.log?.error({ err }, 'onNewLeader failed');
      }
    }
  }

  /**
   * Whether the Lease may be taken: it has not changed for a lease duration since this process first saw its current
   * content. The longer of the holder's declared duration and ours is used.
   */
  private expired(lease: V1Lease): boolean {
    const declared = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    return performance.now() - this.observedAt > Math.max(declared, this.leaseDurationMs);
  }

  private leaseDurationSeconds(): number {
    return Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
  }

  private failedAttempt(what: string, err: unknown): Attempt {
    // 409: another candidate wrote first; 404 after a read is a race with a deletion. Both are ordinary.
    const status = httpStatus(err);
    const log = status === 409 ? this.log?.debug.bind(this.log) : this.log?.warn.bind(this.log);
    log?.({ err: errorMessage(err), what }, `lease ${what} failed`);
    return 'failed';
  }

  /**
   * One API request, bounded by the request timeout: the request is aborted, and the elector moves on even if the
   * client did not honour the abort. (A timer of the elector's own, not bounded({ timeoutMs }): a hung request must
   * not keep a leader from stepping down, and the elector's tests drive this timer with a fake clock.)
   */
  private call<R>(request: (options: ReturnType<typeof bounded>) => Promise<R>): Promise<R> {
    const abort = new AbortController();
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        abort.abort();
        reject(new Error(`request timed out after ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      request(bounded({ signal: abort.signal })).then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(asError(err));
        },
      );
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopping) return resolve();
      const signal = this.stopController.signal;
      const onStop = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onStop);
        resolve();
      }, ms);
      signal.addEventListener('abort', onStop, { once: true });
    });
  }
}
