/**
 * The errors the counter and rollup code raise on purpose, in domain terms: what went wrong, never how HTTP says it
 * (http/errors.ts maps each to its status and code). Anything else that escapes is a store failure or a bug.
 */
export abstract class CounterError extends Error {
  /** Whether the same call may succeed if simply made again later (the rollup queues retry only those). */
  abstract readonly retryable: boolean;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The namespace is not served by this process. */
export class NamespaceNotFoundError extends CounterError {
  readonly retryable = false;

  constructor(readonly namespace: string) {
    super(`namespace "${namespace}" is not served here (GET /v1/namespaces lists those that are)`);
  }
}

/** A store the call needs is down, slow or not there yet; the same call may succeed in `retryAfterSeconds`. */
export class UnavailableError extends CounterError {
  readonly retryable = true;
  readonly retryAfterSeconds: number;

  constructor(message: string, options: { retryAfterSeconds?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterSeconds = options.retryAfterSeconds ?? 1;
  }
}

/**
 * This process's clock is not known to be close enough to Cassandra's for the namespace: it neither accepts events
 * nor writes checkpoints until it is (runtime/clock/clock-guard.ts). Other processes may serve the call meanwhile.
 */
export class ClockUntrustedError extends UnavailableError {
  constructor(message: string) {
    super(message, { retryAfterSeconds: 5 });
  }
}

/** An event time (a token's generation time) outside what the namespace accepts now. */
export class EventTimeRefusedError extends CounterError {
  readonly retryable = false;
}

/**
 * A durable counter's count outside what a JSON number carries exactly. Its events are all kept; the count comes
 * back into range with a ClearCount or deltas of the other sign.
 */
export class CountOutOfRangeError extends CounterError {
  readonly retryable = false;

  constructor(
    readonly counter: string,
    readonly count: bigint,
  ) {
    super(
      `the count of ${counter} is ${count}, outside ±${Number.MAX_SAFE_INTEGER} (the integers a JSON number carries exactly); ` +
        'ClearCount it or add deltas that bring it back',
    );
  }
}

/** A BestEffort delta that would take the count out of range: refused, and the count left as it was. */
export class DeltaOutOfRangeError extends CounterError {
  readonly retryable = false;

  constructor(readonly delta: number) {
    super(`adding ${delta} would take the count outside ±${Number.MAX_SAFE_INTEGER}`);
  }
}

/**
 * A BestEffort counter whose stored value is not a count (something other than Tally wrote under its memcached key,
 * or a server refused the operation on it): refused, nothing changed. ClearCount resets the counter.
 */
export class CountCorruptError extends CounterError {
  readonly retryable = false;

  constructor(
    readonly counter: string,
    detail: string,
  ) {
    super(`the stored value of ${counter} cannot be counted on (${detail}); ClearCount resets it`);
  }
}
