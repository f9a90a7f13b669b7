import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureDir, stateDir } from './paths';
import { say } from './log';

/**
 * What the stack records about each process it starts, in .tally/pids/<name>.json. The start time from
 * /proc/<pid>/stat guards against stopping an unrelated process that later got the same pid: we only ever signal
 * processes we started, identified by pid AND start time, never by name.
 */
export interface ProcessRecord {
  name: string;
  pid: number;
  startTicks: number;
  command: string;
  args: string[];
  logPath: string;
}

function pidFile(name: string): string {
  return path.join(stateDir(), 'pids', `${name}.json`);
}

export function logPath(name: string): string {
  return path.join(stateDir(), 'logs', `${name}.log`);
}

/** Field 22 of /proc/<pid>/stat: the process start time in clock ticks since boot; undefined if it is gone. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after its closing parenthesis.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    if (state === 'Z' || state === 'X') return undefined;
    return Number(rest[19]);
  } catch {
    return undefined;
  }
}

export function readRecord(name: string): ProcessRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(pidFile(name), 'utf8')) as ProcessRecord;
  } catch {
    return undefined;
  }
}

export function isAlive(record: ProcessRecord | undefined): boolean {
  return record !== undefined && processStartTicks(record.pid) === record.startTicks;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Starts a long-running process in its own process group, detached from ours (so `npm run up` can return), with
 * stdout and stderr appended to .tally/logs/<name>.log.
 */
export function startProcess(name: string, command: string, args: string[], opts: StartOptions = {}): ProcessRecord {
  ensureDir(path.join(stateDir(), 'pids'));
  const log = logPath(name);
  ensureDir(path.dirname(log));
  const fd = fs.openSync(log, 'a');
  fs.writeSync(fd, `\n--- ${new Date().toISOString()} starting ${command} ${args.join(' ')}\n`);
  const child = spawn(command, args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  fs.closeSync(fd);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const startTicks = processStartTicks(child.pid);
  if (startTicks === undefined) throw new Error(`${name} exited at once; see its log at ${log}`);
  const record: ProcessRecord = { name, pid: child.pid, startTicks, command, args, logPath: log };
  fs.writeFileSync(pidFile(name), JSON.stringify(record, null, 2));
  return record;
}

/** Stops a process this stack started (SIGTERM to its group, SIGKILL after the grace period). */
export async function stopProcess(name: string, graceMs = 20000): Promise<boolean> {
  const record = readRecord(name);
  if (!record) return false;
  let stopped = false;
  if (isAlive(record)) {
    signalGroup(record.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (isAlive(record) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(record)) {
      say(`${name} (pid ${record.pid}) ignored SIGTERM for ${graceMs / 1000} s: sending SIGKILL`);
      signalGroup(record.pid, 'SIGKILL');
      while (isAlive(record)) await new Promise((r) => setTimeout(r, 50));
    }
    stopped = true;
  }
  fs.rmSync(pidFile(name), { force: true });
  return stopped;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Runs a command to completion with inherited stderr and stdout sent to stderr, so installers and builds show their
 * progress without polluting the stdout of `npm run status`.
 */
export function runCommand(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', process.stderr, 'inherit'], env: env ?? process.env });
    child.once('error', (err) => reject(new Error(`running ${command}: ${err.message}`)));
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit code ${code}`})`));
    });
  });
}
