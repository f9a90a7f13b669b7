import * as fs from 'node:fs';
import { say } from './log';

export interface LockOptions {
  /** How long to wait for another holder before giving up. */
  timeoutMs: number;
  /** Said once while waiting: "waiting for process <pid>, which is <doing>". */
  doing: string;
  intervalMs?: number;
}

/**
 * Runs `fn` holding the lock file `lock` (created exclusively, holding our pid), so only one process at a time does
 * what it guards. A lock left by a process that no longer exists is taken over.
 */
export async function withFileLock<T>(lock: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let waiting = false;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch {
      let text: string;
      try {
        text = fs.readFileSync(lock, 'utf8');
      } catch {
        continue; // released between our attempt and the read: try again
      }
      const holder = Number(text || NaN);
      if (!pidAlive(holder)) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${lock} is held by process ${holder}, which is ${opts.doing}`);
      if (!waiting) say(`waiting for process ${holder}, which is ${opts.doing}`);
      waiting = true;
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/** True when a process with this pid exists (EPERM: it exists, but is not ours to signal). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
