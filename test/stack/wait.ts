import { StackError } from './log';

export interface WaitOptions {
  /** What is being waited for, as it should read in an error: "Cassandra to answer CQL". */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Named in the error so the reader knows where to look. */
  logPath?: string;
  /** Fails fast, instead of waiting out the timeout, once the process behind the service is gone. */
  stillRunning?: () => boolean;
}

/**
 * Polls `probe` until it returns true. A probe that throws counts as "not yet"; its last error is reported if the
 * wait fails, because that is usually the real cause.
 */
export async function waitUntil(probe: () => Promise<boolean>, opts: WaitOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const interval = opts.intervalMs ?? 250;
  let lastError = '';
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    const where = opts.logPath ? `; see its log at ${opts.logPath}` : '';
    const cause = lastError ? ` (last error: ${lastError})` : '';
    if (opts.stillRunning && !opts.stillRunning()) {
      throw new StackError(`waiting for ${opts.what}: the process exited${cause}${where}`);
    }
    if (Date.now() > deadline) {
      throw new StackError(
        `waiting for ${opts.what}: not ready after ${Math.round(opts.timeoutMs / 1000)} s${cause}${where}`,
      );
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
