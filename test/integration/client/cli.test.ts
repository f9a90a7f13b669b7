import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { repoRoot } from '../../stack/paths';
import {
  dropKeyspaces,
  keyspaceOf,
  startInProcess,
  uniqueSuffix,
  type InProcessRuntime,
} from '../../support/runtime-harness';
import { TcpProxy } from '../../support/tcp-proxy';
import { withAcceptLimit } from './support';

const countIn = (r: Run) => (JSON.parse(r.stdout) as { count: number }).count;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `tally` as a user runs it: the built CLI in its own process (the runtime here answers meanwhile). */
function tally(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const main = path.join(repoRoot(), 'dist', 'cli', 'main.js');
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

describe('tally add|get|clear|namespaces', () => {
  const run = uniqueSuffix();
  const AC = `cli-ac-${run}`;
  let rt: InProcessRuntime;
  let env: Record<string, string>;

  beforeAll(async () => {
    rt = await startInProcess([{ name: AC, counterType: 'Accurate', spec: withAcceptLimit(10) }]);
    env = { TALLY_URL: rt.url };
  });
  afterAll(async () => {
    await rt?.close();
    await dropKeyspaces([keyspaceOf(AC)]);
  });

  it('adds, reads and clears, in text and in JSON, exit code 0', async () => {
    const c = `c-${randomUUID()}`;
    const added = await tally(['add', AC, c, '5'], env);
    expect(added).toMatchObject({ code: 0, stderr: '' });
    expect(added.stdout).toMatch(new RegExp(`^added 5 to ${AC}/${c} \\(token [0-9a-f-]{36}, generated \\S+Z\\)\\n$`));
    const got = await tally(['add', AC, c, '-2', '--get', '--json'], env);
    expect(got.code).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ count: 3, idempotency_token: { token: expect.any(String) } });
    expect((await tally(['get', AC, c], env)).stdout).toMatch(new RegExp(`^${AC}/${c} = 3 \\(as of \\S+\\)\\n$`));
    expect(JSON.parse((await tally(['get', AC, c, '--json'], env)).stdout)).toMatchObject({ count: 3 });
    expect(await tally(['clear', AC, c], env)).toMatchObject({ code: 0, stdout: `cleared ${AC}/${c}\n` });
    expect(countIn(await tally(['get', AC, c, '--json', '--url', rt.url], {}))).toBe(0);
  });

  it('sends a given token, so an add repeated with it counts once', async () => {
    const c = `t-${randomUUID()}`;
    const token = ['--token', randomUUID(), '--generation-time', new Date().toISOString()];
    expect((await tally(['add', AC, c, '4', ...token], env)).code).toBe(0);
    expect((await tally(['add', AC, c, '4', ...token], env)).code).toBe(0);
    expect(countIn(await tally(['get', AC, c, '--json'], env))).toBe(4);
  });

  it('lists the namespaces', async () => {
    const text = await tally(['namespaces'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^NAME\s+TYPE\s+READY\s+ACCEPT-LIMIT\n/);
    expect(text.stdout).toMatch(new RegExp(`\\n${AC}\\s+Accurate\\s+yes\\s+10s\\n`));
    const json = JSON.parse((await tally(['namespaces', '--json'], env)).stdout) as { namespaces: { name: string }[] };
    expect(json.namespaces.map((n) => n.name)).toContain(AC);
  });

  it('exits 3 for a refusal, with the error as JSON under --json', async () => {
    const missing = await tally(['get', `nope-${run}`, 'x', '--json'], env);
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.stdout)).toMatchObject({ error: { code: 'NAMESPACE_NOT_FOUND', field: 'namespace' } });
    expect(missing.stderr).toMatch(/^tally get: 404 NAMESPACE_NOT_FOUND/);
    const old = await tally(['add', AC, 'x', '--token', 'old', '--generation-time', '2020-01-01T00:00:00Z'], env);
    expect(old.code).toBe(3);
    expect(old.stderr).toMatch(/INVALID_ARGUMENT/);
  });

  it('exits 4 when the runtime cannot be reached, after retrying within the accept window', async () => {
    const down = await new TcpProxy('127.0.0.1', Number(new URL(rt.url).port)).start();
    try {
      down.cut();
      const started = Date.now();
      const r = await tally(['add', AC, 'x', '--json'], { TALLY_URL: `http://${down.address}` });
      expect(r.code).toBe(4);
      // Nothing could be learnt from the runtime: the 5 s default limit, less the 1 s margin.
      expect(Date.now() - started).toBeLessThan(8000);
      expect(JSON.parse(r.stdout)).toMatchObject({
        error: { code: 'ACCEPT_WINDOW_EXCEEDED', idempotency_token: { token: expect.any(String) } },
      });
      expect(r.stderr).toMatch(/accept limit 5 s/);
    } finally {
      await down.close();
    }
  });

  it('exits 2 for a usage error, and each command has --help', async () => {
    expect((await tally(['add', AC], env)).code).toBe(2);
    expect((await tally(['add', AC, 'x', 'two'], env)).code).toBe(2);
    expect((await tally(['get', AC, 'x', '--bogus'], env)).code).toBe(2);
    expect((await tally(['get', AC, 'x'], { TALLY_URL: '' })).stderr).toMatch(/--url URL \(or TALLY_URL\) is required/);
    for (const command of ['add', 'get', 'clear', 'namespaces']) {
      const h = await tally([command, '--help']);
      expect(h.code).toBe(0);
      expect(h.stdout).toMatch(new RegExp(`^usage: tally ${command} `));
      expect(h.stdout).toMatch(/exit codes: 0 done, 3 refused/);
    }
  });
});
