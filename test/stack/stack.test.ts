import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Component, Endpoint } from './component';
import { isListening, portOr } from './ports';
import { isAlive, readRecord, startProcess, type ProcessRecord } from './processes';
import { down, registerTestRun, releaseTestRun, up } from './stack';
import { waitFor } from './wait';

/** Each test of the calling describe block gets a state directory of its own, removed after it. */
function useTemporaryStateDir(): void {
  const previous = process.env.TALLY_STATE_DIR;
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-stack-'));
    process.env.TALLY_STATE_DIR = dir;
  });
  afterEach(() => {
    if (previous === undefined) delete process.env.TALLY_STATE_DIR;
    else process.env.TALLY_STATE_DIR = previous;
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

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
  useTemporaryStateDir();

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

/**
 * A component whose process really listens on a TCP port (a small node server), taken with portOr like the real
 * components, and named by FAKE_URL when external.
 */
function listeningComponent(starts: Endpoint[]): Component {
  const processName = 'fake-listener';
  return {
    name: 'listener',
    phase: 0,
    externalVars: ['FAKE_URL'],
    fromEnvironment: (env) => (env.FAKE_URL ? { address: env.FAKE_URL, env: { FAKE_URL: env.FAKE_URL } } : undefined),
    install: () => Promise.resolve(),
    async start(_env, previous): Promise<Endpoint> {
      const port = await portOr(previous?.ports?.http);
      const record = startProcess(processName, process.execPath, [
        '-e',
        `require('node:net').createServer((s) => s.end()).listen(${port}, '127.0.0.1')`,
      ]);
      const address = `127.0.0.1:${port}`;
      await waitFor(`the fake listener on ${address}`, () => isListening('127.0.0.1', port), {
        stillRunning: () => isAlive(record),
      });
      const endpoint = { address, env: { FAKE_URL: address }, ports: { http: port } };
      starts.push(endpoint);
      return endpoint;
    },
    probe: async (endpoint) => {
      const [host, port] = endpoint.address.split(':');
      return { ok: await isListening(host!, Number(port)) };
    },
    processes: [processName],
  };
}

describe('the stack restarting a component', () => {
  afterEach(async () => {
    await down(undefined, [listeningComponent([])]);
    delete process.env.FAKE_URL;
  });
  useTemporaryStateDir();

  it('brings a component that died back on its recorded address', async () => {
    const starts: Endpoint[] = [];
    const all = [listeningComponent(starts)];
    await up('up', all);
    process.kill(-readRecord('fake-listener')!.pid, 'SIGKILL');
    await waitFor('the killed listener to be gone', () => !isAlive(readRecord('fake-listener')));
    const again = await up('up', all);
    expect(again.started).toEqual(['listener']);
    expect(starts).toHaveLength(2);
    expect(starts[1]!.address).toBe(starts[0]!.address);
  });

  it('still manages its own services when the environment names them (after `. .tally/env`)', async () => {
    const starts: Endpoint[] = [];
    const all = [listeningComponent(starts)];
    const first = await up('up', all);
    process.env.FAKE_URL = first.env.FAKE_URL;
    await up('up', all);
    await down(undefined, all);
    // Treated as external, `down` would have left the process running.
    expect(isAlive(readRecord('fake-listener'))).toBe(false);
  });
});
