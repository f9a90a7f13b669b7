import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { messageOf } from '../../lib/errors';
import { repoRoot } from '../stack/paths';
import { rssMiB } from './load';

const started = Date.now();

/** Progress of the scale run: one JSON object a line on stderr, so a long run can be followed and parsed. */
export function progress(phase: string, event: string, fields: Record<string, unknown> = {}): void {
  const line = { bench: 'scale', t: new Date().toISOString(), elapsed_s: (Date.now() - started) / 1000, phase, event };
  process.stderr.write(`${JSON.stringify({ ...line, ...fields })}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const cli = (): string => path.join(repoRoot(), 'dist', 'cli', 'main.js');

/** Samples a process's resident memory every `intervalMs` until stopped: the peak and the last sample. */
export function sampleRss(pid: number, intervalMs = 200): { peak(): number; last(): number; stop(): void } {
  let peak = rssMiB(pid);
  let last = peak;
  const timer = setInterval(() => {
    const now = rssMiB(pid);
    if (!Number.isFinite(now)) return;
    last = now;
    peak = Math.max(peak, now);
  }, intervalMs);
  return {
    peak: () => peak,
    last: () => last,
    stop: () => clearInterval(timer),
  };
}

/** A `tally serve` the bench started: its URL, pid, and how long it took to listen. */
export interface Served {
  url: string;
  pid: number;
  child: ChildProcess;
  /** From spawning the process to its "listening" log line. */
  listeningMs: number;
  /** Spawn time (Date.now()), to time readiness from. */
  spawnedAt: number;
  stop(): Promise<void>;
}

/**
 * Starts `tally serve --namespaces dir` on a free loopback port against the stack in `env`, as the bench's runtime
 * (no authentication: file mode). Its logs are read line by line for the listening line and then discarded.
 */
export async function startServe(env: NodeJS.ProcessEnv, dir: string, extraArgs: string[] = []): Promise<Served> {
  const spawnedAt = Date.now();
  const child = spawn(
    process.execPath,
    [cli(), 'serve', '--namespaces', dir, '--port', '0', '--host', '127.0.0.1', '--drain-seconds', '0', ...extraArgs],
    { env: { ...env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let tail = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tally serve did not listen within 120 s:\n${tail}`)), 120_000);
    let buffered = '';
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        tail = (tail + line + '\n').slice(-4000);
        const m = /"port":(\d+)[^\n]*tally runtime listening/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-4000)));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tally serve exited with ${code}:\n${tail}`));
    });
  });
  const listeningMs = Date.now() - spawnedAt;
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    child,
    listeningMs,
    spawnedAt,
    stop: () => stopProcess(child),
  };
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** GETs a path of the runtime (no keep-alive: these are occasional). */
export async function getText(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { headers: { connection: 'close' } });
  return { status: res.status, body: await res.text() };
}

/**
 * Waits until /readyz says every namespace was loaded and all `expected` are ready. Returns the time from the
 * process's spawn.
 */
export async function waitAllReady(served: Served, expected: number, timeoutMs = 600_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await getText(`${served.url}/readyz`);
      last = r.body;
      const detail = (JSON.parse(r.body) as { checks?: { namespaces?: { detail?: string } } }).checks?.namespaces
        ?.detail;
      if (r.status === 200 && detail === `${expected} of ${expected} ready`) return Date.now() - served.spawnedAt;
    } catch (err) {
      last = messageOf(err);
    }
    await sleep(100);
  }
  throw new Error(`the runtime's ${expected} namespaces were not all ready within ${timeoutMs / 1000} s: ${last}`);
}

export interface SweepRun {
  /** From spawning `tally rollup` to its exit. */
  wallMs: number;
  /** The sweep's own duration, from its summary. */
  durationMs: number;
  scanned: number;
  behind: number;
  rolled: number;
  failed: number;
  retried: number;
  eventsRead: number;
  peakRssMiB: number;
  /** Its V8 heap cap (--max-old-space-size). */
  heapCapMiB: number;
  /** The first errors its summary names (at most ten). */
  errors: string[];
  exitCode: number | null;
}

/**
 * The sweeper's V8 heap is capped (SCALE_SWEEPER_HEAP_MB, default 128 MiB): RSS alone cannot tell memory it holds
 * from garbage V8 has not yet collected, but a sweep that keeps something per counter runs out of a fixed heap once
 * there are enough counters, and fails the run.
 */
export const SWEEPER_HEAP_MB = Number(process.env.SCALE_SWEEPER_HEAP_MB ?? 128);
/** Extra node flags for the sweeper, e.g. SCALE_SWEEPER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const SWEEPER_NODE_ARGS = (process.env.SCALE_SWEEPER_NODE_ARGS ?? '').split(' ').filter(Boolean);

/**
 * Runs the sweeper the rollup CronJob runs (`tally rollup --namespaces dir --namespace name`) as a process of its
 * own, sampling its resident memory, and reads its JSON summary from stdout.
 */
export async function runSweeper(env: NodeJS.ProcessEnv, dir: string, namespace: string): Promise<SweepRun> {
  const t0 = Date.now();
  const args = [
    `--max-old-space-size=${SWEEPER_HEAP_MB}`,
    ...SWEEPER_NODE_ARGS,
    cli(),
    'rollup',
    '--namespaces',
    dir,
    '--namespace',
    namespace,
  ];
  const child = spawn(process.execPath, args, {
    env: { ...env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const rss = sampleRss(child.pid!, 100);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  rss.stop();
  const wallMs = Date.now() - t0;
  const line = out
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('{'));
  if (!line) throw new Error(`tally rollup printed no summary (exit ${exitCode}):\n${out}\n${err}`);
  const summary = JSON.parse(line) as Partial<SweepRun> & { error?: string };
  if (summary.error) throw new Error(`tally rollup failed: ${summary.error}`);
  return {
    wallMs,
    durationMs: summary.durationMs ?? NaN,
    scanned: summary.scanned ?? NaN,
    behind: summary.behind ?? NaN,
    rolled: summary.rolled ?? NaN,
    failed: summary.failed ?? NaN,
    retried: summary.retried ?? NaN,
    eventsRead: summary.eventsRead ?? NaN,
    peakRssMiB: rss.peak(),
    heapCapMiB: SWEEPER_HEAP_MB,
    errors: summary.errors ?? [],
    exitCode,
  };
}

/** Retries `fn` while Cassandra restarts or refuses connections (another engineer may restart the stack's). */
export async function withRetry<T>(what: string, fn: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      progress('retry', what, { attempt: i, error: messageOf(err) });
      await sleep(Math.min(30_000, 2000 * i));
    }
  }
}
