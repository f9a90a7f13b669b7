import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import { splitCpus } from './cpu-split';

const affinity = (pid: number): string =>
  /:\s*([\d,-]+)\s*$/.exec(execFileSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' }))![1]!;

describe('splitCpus (real taskset, real processes)', () => {
  let database: ChildProcess;
  let client: ChildProcess;

  beforeEach(() => {
    database = spawn('sleep', ['60']);
    client = spawn('sleep', ['60']);
  });

  afterEach(() => {
    database.kill();
    client.kill();
  });

  it('pins the database to the first half of the CPUs and its clients to the rest, then gives them back', () => {
    const cpus = os.cpus().length;
    const before = [affinity(database.pid!), affinity(client.pid!)];
    const exitListeners = process.listenerCount('exit');
    const split = splitCpus(database.pid!, [client.pid!]);
    if (cpus < 2) {
      expect(split).toBe(`${cpus} CPU: nothing to split`);
      return;
    }
    if (typeof split === 'string') throw new Error(split);
    const half = Math.floor(cpus / 2);
    const list = (from: number, to: number): string => (from === to ? String(from) : `${from}-${to}`);
    expect(affinity(database.pid!)).toBe(list(0, half - 1));
    expect(affinity(client.pid!)).toBe(list(half, cpus - 1));
    expect(split.description).toBe(
      `Cassandra on CPU ${list(0, half - 1)}, servers under test and load generator on CPU ${list(half, cpus - 1)}`,
    );
    // Until restored, an exiting bench gives the CPUs back.
    expect(process.listenerCount('exit')).toBe(exitListeners + 1);
    split.restore();
    expect([affinity(database.pid!), affinity(client.pid!)]).toEqual(before);
    expect(process.listenerCount('exit')).toBe(exitListeners);
  });

  it('says why it cannot split for a Cassandra it did not start', () => {
    expect(splitCpus(NaN, [client.pid!])).toMatch(/existing service|nothing to split/);
  });

  it('pins nothing when one of the processes cannot be pinned', () => {
    const before = affinity(database.pid!);
    const split = splitCpus(database.pid!, [2 ** 22 + 1]);
    if (os.cpus().length < 2) return expect(split).toMatch(/nothing to split/);
    expect(split).toMatch(/^taskset failed: /);
    expect(affinity(database.pid!)).toBe(before);
  });
});
