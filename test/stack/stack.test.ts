import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Component, Endpoint } from './component';
import { isAlive, startProcess, type ProcessRecord } from './processes';
import { registerTestRun, releaseTestRun, up } from './stack';

/** A component that runs a real process (`sleep`) and then becomes ready or fails, as its `ready` says. */
function fakeComponent(name: string, ready: boolean, records: Map<string, ProcessRecord>): Component {
  const processName = `fake-${name}`;
  return {
    name,
    phase: 0,
    externalVars: [],
    fromEnvironment: () => undefined,
    install: () => Promise.resolve(),
    start(): Promise<Endpoint> {
      records.set(name, startProcess(processName, 'sleep', ['60']));
      if (!ready) return Promise.reject(new Error(`${name} never answered`));
      return Promise.resolve({ address: name, env: { [`FAKE_${name.toUpperCase()}`]: 'yes' } });
    },
    probe: () => Promise.resolve({ ok: true }),
    processes: [processName],
  };
}

describe('the stack when a component fails to start', () => {
  const previousStateDir = process.env.TALLY_STATE_DIR;
  let stateDir: string;

  beforeEach(() => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-stack-'));
    process.env.TALLY_STATE_DIR = stateDir;
  });

  afterEach(() => {
    if (previousStateDir === undefined) delete process.env.TALLY_STATE_DIR;
    else process.env.TALLY_STATE_DIR = previousStateDir;
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('stops the failed component at once, and the test run releases what it started before the failure', async () => {
    const records = new Map<string, ProcessRecord>();
    const all = [fakeComponent('good', true, records), fakeComponent('bad', false, records)];
    registerTestRun();
    await expect(up('test', all)).rejects.toThrow('bad never answered');
    expect(isAlive(records.get('bad'))).toBe(false);
    // What did start stays recorded as started by the test run, and a test run's release stops it.
    expect(isAlive(records.get('good'))).toBe(true);
    await releaseTestRun(all);
    expect(isAlive(records.get('good'))).toBe(false);
  });

  it('leaves what did start running for `npm run up`, which reuses it on the next try', async () => {
    const records = new Map<string, ProcessRecord>();
    const failing = [fakeComponent('good', true, records), fakeComponent('bad', false, records)];
    await expect(up('up', failing)).rejects.toThrow('bad never answered');
    const goodPid = records.get('good')!.pid;
    const retried = [fakeComponent('good', true, records), fakeComponent('bad', true, records)];
    try {
      const result = await up('up', retried);
      expect(result.started).toEqual(['bad']);
      expect(records.get('good')!.pid).toBe(goodPid);
      expect(result.env).toEqual({ FAKE_GOOD: 'yes', FAKE_BAD: 'yes' });
    } finally {
      for (const r of records.values()) if (isAlive(r)) process.kill(-r.pid, 'SIGKILL');
    }
  });
});
