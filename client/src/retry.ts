/** How long to wait between attempts: exponential backoff with full jitter, capped. */
export interface BackoffOptions {
  /** The first retry waits up to this long (ms). */
  baseDelayMs: number;
  /** No wait is longer than this (ms), Retry-After aside. */
  maxDelayMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseDelayMs: 50, maxDelayMs: 2000 };

/**
 * The wait before retry number `retry` (1 for the first): a uniformly random time up to base * 2^(retry-1), capped
 * ("full jitter"), so that clients that failed together do not come back together.
 */
export function backoffDelay(retry: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

/**
 * A Retry-After header in ms from now: delay-seconds ("5") or an HTTP date. Undefined when absent or unreadable, and
 * never negative (a date in the past means "now").
 */
export function parseRetryAfter(header: string | null | undefined, nowMs: number): number | undefined {
  if (header === null || header === undefined) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP date names its weekday; anything else (a negative or fractional number) is not a valid header.
  if (!/^[A-Za-z]{3},/.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * The last instant (ms) at which an attempt of a mutation is still worth sending: the token's generation_time plus
 * the namespace's accept limit, less a margin for the attempt's travel and for this clock being off from the
 * server's. The margin is at most half the limit, so a short window still allows retries.
 */
export function acceptDeadline(generationTimeMs: number, acceptLimitSeconds: number, marginMs: number): number {
  const limitMs = acceptLimitSeconds * 1000;
  return generationTimeMs + limitMs - Math.min(marginMs, limitMs / 2);
}

/** The wait before the next attempt: the backoff, or longer when the server asked for it. */
export function nextDelay(backoffMs: number, retryAfterMs: number | undefined): number {
  return Math.max(backoffMs, retryAfterMs ?? 0);
}
