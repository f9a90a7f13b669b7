import { messageOf } from '../../lib/errors';
import { StackError } from './log';

export interface WaitOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Default 100 ms. */
  intervalMs?: number;
  /** Named in the error so the reader knows where to look. */
  logPath?: string;
  /** Fails fast, instead of waiting out the timeout, once the process behind the service is gone. */
  stillRunning?: () => boolean;
}

/**
 * The one polling loop of the stack and the tests: calls `probe` until it returns a value other than undefined or
 * false, and resolves to that value. A probe that throws counts as "not yet"; the error of the last try is reported
 * if the wait fails, because that is usually the real cause, so a probe can throw to say what it saw.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      lastError = '';
    } catch (err) {
      lastError = messageOf(err).split('\n')[0]!;
    }
    const where = opts.logPath ? `; see its log at ${opts.logPath}` : '';
    const cause = lastError ? ` (last seen: ${lastError})` : '';
    if (opts.stillRunning && !opts.stillRunning()) {
      throw new StackError(`waiting for ${what}: the process exited${cause}${where}`);
    }
    if (Date.now() > deadline) {
      throw new StackError(`waiting for ${what}: not the case after ${timeoutMs} ms${cause}${where}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
