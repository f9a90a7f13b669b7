/** One failure the status page shows: when, where, its code and a message fit for operators. */
export interface RecentError {
  /** RFC 3339. */
  time: string;
  /** A served namespace, or undefined (the request named none this process serves, or none at all). */
  namespace?: string;
  /** The API's error code (UNAVAILABLE, INTERNAL) or ROLLUP_FAILED. */
  code: string;
  message: string;
  /** How often it happened since it was first listed: a failing rollup is retried every second. */
  count: number;
}

/** How many /status keeps (and /status.json documents at most). */
export const RECENT_ERRORS_KEPT = 20;

/** Messages are cut here: a store's error can be long, and the page is for a glance. */
const MESSAGE_MAX_CHARS = 300;

/**
 * The last few server-side failures (5xx answers and failed rollups), newest first, for /status. Bounded, so a storm
 * of errors costs nothing but the oldest entries; a repeat of a listed one (same namespace, code and message) moves
 * it to the top and counts it, so one failure retried every second does not push out all others. Callers pass
 * messages meant for clients or operators (never a request body or a credential): what the API answered, or a
 * store's error text.
 */
export class RecentErrors {
  private readonly entries: RecentError[] = [];

  constructor(
    readonly capacity = RECENT_ERRORS_KEPT,
    private readonly now: () => number = Date.now,
  ) {}

  record(e: { namespace?: string | undefined; code: string; message: string }): void {
    const message = e.message.length > MESSAGE_MAX_CHARS ? `${e.message.slice(0, MESSAGE_MAX_CHARS - 1)}…` : e.message;
    const time = new Date(this.now()).toISOString();
    const i = this.entries.findIndex((x) => x.namespace === e.namespace && x.code === e.code && x.message === message);
    if (i >= 0) {
      const [repeated] = this.entries.splice(i, 1);
      this.entries.unshift({ ...repeated!, time, count: repeated!.count + 1 });
      return;
    }
    this.entries.unshift({
      time,
      ...(e.namespace !== undefined ? { namespace: e.namespace } : {}),
      code: e.code,
      message,
      count: 1,
    });
    if (this.entries.length > this.capacity) this.entries.length = this.capacity;
  }

  /** Newest first; a copy. */
  list(): RecentError[] {
    return this.entries.map((e) => ({ ...e }));
  }
}
