import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import type { V1Deployment } from '@kubernetes/client-node';
import { freePort } from '../../stack/ports';
import { repoRoot } from '../../stack/paths';
import { requireEnv } from '../../support/env';
import { waitFor } from '../../stack/wait';

/**
 * The built dist/ is started from the repository root with exactly the command the chart's Deployment gives the
 * container (which the Dockerfile's ENTRYPOINT/CMD agree with), with the chart's environment pointed at the local
 * stack, and must serve. The images themselves are built and run in images.test.ts.
 */
describe("the images' command, run as the chart runs it", () => {
  const children: ChildProcess[] = [];
  afterAll(() => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM')));

  const rendered = (): V1Deployment[] => {
    const out = execFileSync(
      requireEnv('TALLY_HELM'),
      [
        'template',
        'img',
        path.join(repoRoot(), 'helm', 'tally'),
        '--kube-version',
        '1.36.3',
        '--set',
        `cassandra.contactPoints=${requireEnv('CASSANDRA_CONTACT_POINTS')}`,
        '--set',
        `cassandra.localDataCenter=${requireEnv('CASSANDRA_LOCAL_DC')}`,
        '--set',
        'memcached.enabled=false',
        '--set',
        `memcached.servers=${requireEnv('MEMCACHED_SERVERS')}`,
        '--set',
        'watchNamespaces={default}',
      ],
      { encoding: 'utf8' },
    );
    return (yaml.loadAll(out) as { kind?: string }[]).filter((d) => d?.kind === 'Deployment');
  };

  /**
   * The Dockerfile's ENTRYPOINT + CMD for a target, as a JSON-form command line: the targets share the package
   * stage's ENTRYPOINT; each has its own CMD.
   */
  const dockerCommand = (target: string): string[] => {
    const text = fs.readFileSync(path.join(repoRoot(), 'Dockerfile'), 'utf8');
    const stage = text.split(/^FROM /m).find((s) => new RegExp(`^\\S+ AS ${target}$`, 'm').test(s.split('\n')[0]!))!;
    const entry = JSON.parse(/^ENTRYPOINT\s+(\[.*\])$/m.exec(text)![1]!) as string[];
    const cmd = JSON.parse(/^CMD\s+(\[.*\])$/m.exec(stage)![1]!) as string[];
    return [...entry, ...cmd];
  };

  async function runAs(component: 'runtime' | 'operator', port: number): Promise<string> {
    const deployment = rendered().find((d) => d.metadata?.name === `img-tally-${component}`)!;
    const container = deployment.spec!.template.spec!.containers[0]!;
    const command = [...(container.command ?? []), ...(container.args ?? [])];
    // The chart's command and the image's default command start the same program.
    expect(command.slice(0, 3)).toEqual(dockerCommand(component).slice(0, 3));
    const env: Record<string, string> = {
      PATH: process.env.PATH!,
      KUBECONFIG: requireEnv('KUBECONFIG'),
      NODE_ENV: 'production',
    };
    for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    env.POD_NAME = `img-${component}`;
    env.POD_NAMESPACE = 'default';
    env.TALLY_LEASE_NAME = 'tally-entrypoint-test';
    if (component === 'operator') {
      env.TALLY_OPERATOR_PORT = String(port);
      // Its own, empty namespace: the stack's operator stays the only one reconciling the examples.
      env.TALLY_WATCH_NAMESPACES = 'tally-entrypoint-empty';
    }
    const args = command.slice(1).map((a, i, all) => (all[i - 1] === '--port' ? String(port) : a));
    const child = spawn(command[0]!, args, { cwd: repoRoot(), env, stdio: 'ignore' });
    children.push(child);
    return `http://127.0.0.1:${port}`;
  }

  it('the runtime serves the namespaces of the operator ConfigMaps', async () => {
    const url = await runAs('runtime', await freePort());
    await waitFor(
      'the runtime to be ready',
      async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
      { timeoutMs: 30_000 },
    );
    // The chart's environment turns authentication on: a caller needs a token (the stack's, of the counter admin).
    expect((await fetch(`${url}/v1/namespaces`)).status).toBe(401);
    const list = (await (
      await fetch(`${url}/v1/namespaces`, { headers: { authorization: `Bearer ${requireEnv('TALLY_TOKEN')}` } })
    ).json()) as { namespaces: { name: string }[] };
    expect(list.namespaces.map((n) => n.name)).toEqual(expect.arrayContaining(['orders', 'page-views', 'payments']));
  });

  it('the operator answers /healthz and /metrics', async () => {
    const url = await runAs('operator', await freePort());
    await waitFor(
      'the operator to answer /healthz',
      async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200,
      { timeoutMs: 30_000 },
    );
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('controller_runtime_reconcile_total');
    expect(metrics).toMatch(
      /^tally_build_info\{version="\d+\.\d+\.\d+",component="operator",nodejs_version="v[\d.]+"\} 1$/m,
    );
  });
});
