import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { messageOf } from '../../lib/errors';

export interface CpuSplit {
  /** What runs where, for the report. */
  description: string;
  /** Gives every pinned process its CPUs back. Safe to call more than once. */
  restore(): void;
}

/** The CPU list a process's main thread may run on (`taskset -p` prints it as a list with -c). */
function affinity(pid: number): string {
  const out = execFileSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' });
  const list = /:\s*([\d,-]+)\s*$/.exec(out)?.[1];
  if (!list) throw new Error(`cannot read the CPU affinity of pid ${pid} from: ${out.trim()}`);
  return list;
}

/** Pins every thread of pid (-a) to the CPU list; threads created later inherit it from their creator. */
function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-c', '-p', cpus, String(pid)], { stdio: 'ignore' });
}

/**
 * Splits the machine's CPUs as a deployment does, where Cassandra runs on nodes of its own: Cassandra gets the first
 * half, its clients (the servers under test and this load generator, or the load generator alone for the baseline)
 * the second. Both sides of a comparison run on the same split, so each gets the same CPUs. Returns why not when it
 * cannot be done: one CPU, Cassandra not started by the stack (an existing service), or no `taskset`.
 */
export function splitCpus(cassandraPid: number, clientPids: number[]): CpuSplit | string {
  const cpus = os.cpus().length;
  if (cpus < 2) return `${cpus} CPU: nothing to split`;
  if (!Number.isFinite(cassandraPid)) return 'Cassandra is an existing service, not a process this machine can pin';
  const half = Math.floor(cpus / 2);
  const database = half === 1 ? '0' : `0-${half - 1}`;
  const clients = half === cpus - 1 ? String(half) : `${half}-${cpus - 1}`;
  const original = new Map<number, string>();
  const restore = (): void => {
    for (const [pid, list] of original) {
      try {
        pin(pid, list);
      } catch {
        // The process is gone: nothing to give back.
      }
    }
    original.clear();
    process.off('exit', restore);
  };
  try {
    for (const pid of [cassandraPid, ...clientPids]) original.set(pid, affinity(pid));
    // Registered before pinning: a bench that dies half-way must not leave the stack's Cassandra on half the CPUs.
    process.on('exit', restore);
    pin(cassandraPid, database);
    for (const pid of clientPids) pin(pid, clients);
  } catch (err) {
    restore();
    return `taskset failed: ${messageOf(err)}`;
  }
  return {
    description: `Cassandra on CPU ${database}, servers under test and load generator on CPU ${clients}`,
    restore,
  };
}
