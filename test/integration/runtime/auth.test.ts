import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { chartDir } from '../../stack/components/cluster';
import { waitFor } from '../../stack/wait';
import { requireEnv } from '../../support/env';
import { createNamespace, deleteNamespace, kubeConfig } from '../../support/kube';
import { dropKeyspaces, FAST, startProcess, uniqueSuffix, type ChildRuntime } from '../../support/runtime-harness';

/**
 * `tally serve --auth kubernetes` against the stack's API server: callers are ServiceAccounts with tokens the API
 * server issues, their rights RoleBindings to the chart's own counter ClusterRoles (rendered with helm template), and
 * every answer is checked against what `kubectl auth can-i` says for the same identity.
 */
describe('authentication and authorization with the cluster (TokenReview, SubjectAccessReview)', () => {
  const run = uniqueSuffix();
  const release = `at${run}`;
  const roles = `${release}-tally`;
  const home = `tally-auth-${run}`;
  const eventual = `au-${run}`;
  const bestEffort = `ab-${run}`;
  const kc = kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const accounts = ['nobody', 'reader', 'writer', 'admin', 'observer'] as const;
  const tokens: Record<string, string> = {};
  let rolesFile = '';
  let dir = '';
  let rt: ChildRuntime;

  const kubectl = (...args: string[]): { status: number | null; out: string } => {
    const r = spawnSync('kubectl', ['--kubeconfig', requireEnv('KUBECONFIG'), ...args], { encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
  };
  const bind = async (account: string, role: string): Promise<void> => {
    await rbac.createNamespacedRoleBinding({
      namespace: home,
      body: {
        metadata: { name: account },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${roles}-counter-${role}` },
        subjects: [{ kind: 'ServiceAccount', name: account, namespace: home }],
      },
    });
  };
  const request = async (
    method: string,
    urlPath: string,
    token: string | undefined,
    body?: unknown,
  ): Promise<{
    status: number;
    body: { error?: { code: string; message: string } } & Record<string, unknown>;
    headers: Headers;
  }> => {
    const res = await fetch(`${rt.url}${urlPath}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = { text };
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  const op = (name: string, account: string | undefined, body: Record<string, unknown>) =>
    request('POST', `/v1/counter/${name}`, account ? tokens[account] : undefined, body);
  /** What `kubectl auth can-i` says the account may do to the namespace's counters. */
  const canI = (verb: string, account: string): boolean => {
    const r = kubectl(
      'auth',
      'can-i',
      verb,
      `counternamespaces.tally.dev/${eventual}`,
      '--subresource=counters',
      '-n',
      home,
      `--as=system:serviceaccount:${home}:${account}`,
    );
    if (r.out !== 'yes' && r.out !== 'no') throw new Error(`kubectl auth can-i: ${r.out}`);
    return r.out === 'yes';
  };

  beforeAll(async () => {
    // The chart's counter roles, as `helm install` would create them.
    const rendered = spawnSync(
      requireEnv('TALLY_HELM'),
      ['template', release, chartDir(), '--show-only', 'templates/counter-roles.yaml'],
      { encoding: 'utf8' },
    );
    if (rendered.status !== 0) throw new Error(`helm template: ${rendered.stderr}`);
    rolesFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tally-auth-')), 'roles.yaml');
    fs.writeFileSync(rolesFile, rendered.stdout);
    const applied = kubectl('apply', '-f', rolesFile);
    if (applied.status !== 0) throw new Error(applied.out);

    await createNamespace(kc, home);
    for (const account of accounts) {
      await core.createNamespacedServiceAccount({ namespace: home, body: { metadata: { name: account } } });
      await waitFor(`ServiceAccount ${account}`, async () => {
        const issued = await core.createNamespacedServiceAccountToken({
          name: account,
          namespace: home,
          body: { spec: { audiences: [], expirationSeconds: 3600 } },
        });
        tokens[account] = issued.status!.token;
        return true;
      });
    }
    await bind('reader', 'reader');
    await bind('writer', 'writer');
    await bind('admin', 'admin');
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `${release}-observer` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${roles}-observer` },
        subjects: [{ kind: 'ServiceAccount', name: 'observer', namespace: home }],
      },
    });

    // CounterNamespace documents with their Kubernetes namespace, as the operator's ConfigMaps carry it.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-auth-ns-'));
    fs.writeFileSync(
      path.join(dir, 'namespaces.yaml'),
      [
        { name: eventual, counterType: 'Eventual' },
        { name: bestEffort, counterType: 'BestEffort' },
      ]
        .map((n) =>
          yaml.dump({
            apiVersion: 'tally.dev/v1alpha1',
            kind: 'CounterNamespace',
            metadata: { name: n.name, namespace: home },
            spec: { counterType: n.counterType, ...FAST },
          }),
        )
        .join('---\n'),
    );
    rt = await startProcess(
      dir,
      [eventual, bestEffort],
      { TALLY_AUTH: 'kubernetes', TALLY_AUTH_CACHE_SECONDS: '1', KUBECONFIG: requireEnv('KUBECONFIG') },
      tokens.observer,
    );
  });

  afterAll(async () => {
    await rt?.stop();
    kubectl('delete', 'clusterrolebinding', `${release}-observer`, '--ignore-not-found');
    if (rolesFile) kubectl('delete', '-f', rolesFile, '--ignore-not-found');
    await deleteNamespace(kc, home, false);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    await dropKeyspaces([`tally_${eventual.replace(/-/g, '_')}`]);
  });

  it('answers 401 with a JSON error and WWW-Authenticate without a token or with one the cluster refuses', async () => {
    const none = await op('AddCount', undefined, { namespace: eventual, counter_name: 'c', delta: 1 });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="tally"');
    expect(none.body.error).toEqual({ code: 'UNAUTHENTICATED', message: expect.stringContaining('no bearer token') });
    const forged = await request('GET', `/v1/namespaces/${eventual}/counters/c`, `${tokens.writer}x`);
    expect([forged.status, forged.body.error?.code]).toEqual([401, 'UNAUTHENTICATED']);
    for (const p of ['/metrics', '/status', '/status.json', '/v1/namespaces']) {
      expect([p, (await request('GET', p, undefined)).status]).toEqual([p, 401]);
    }
  });

  it('keeps health, readiness and the OpenAPI document open', async () => {
    for (const p of ['/healthz', '/readyz', '/openapi.json']) {
      expect([p, (await request('GET', p, undefined)).status]).toEqual([p, 200]);
    }
  });

  it('answers each identity as its RoleBinding says, and as kubectl auth can-i says', async () => {
    const calls = [
      { verb: 'get', name: 'GetCount', body: { namespace: eventual, counter_name: 'c' } },
      { verb: 'update', name: 'AddCount', body: { namespace: eventual, counter_name: 'c', delta: 1 } },
      { verb: 'delete', name: 'ClearCount', body: { namespace: eventual, counter_name: 'c' } },
    ];
    const seen: string[] = [];
    const expected: string[] = [];
    for (const account of ['nobody', 'reader', 'writer', 'admin']) {
      for (const c of calls) {
        const reply = await op(c.name, account, c.body);
        const allowed = canI(c.verb, account);
        seen.push(`${account} ${c.name} ${reply.status}`);
        expected.push(`${account} ${c.name} ${allowed ? 200 : 403}`);
        if (reply.status === 403) {
          expect(reply.body.error).toEqual({
            code: 'PERMISSION_DENIED',
            field: 'namespace',
            message: `system:serviceaccount:${home}:${account} may not ${c.verb} counternamespaces/counters of namespace "${eventual}" (CounterNamespace ${home}/${eventual})`,
          });
        }
      }
    }
    expect(seen).toEqual(expected);
    // The chart's roles: reader reads, writer also adds, admin also clears; nobody does nothing.
    expect(expected).toEqual([
      'nobody GetCount 403',
      'nobody AddCount 403',
      'nobody ClearCount 403',
      'reader GetCount 200',
      'reader AddCount 403',
      'reader ClearCount 403',
      'writer GetCount 200',
      'writer AddCount 200',
      'writer ClearCount 403',
      'admin GetCount 200',
      'admin AddCount 200',
      'admin ClearCount 200',
    ]);
  });

  it('asks for both update and get on AddAndGetCount, and authorizes the GET form of GetCount', async () => {
    const body = { namespace: bestEffort, counter_name: 'both', delta: 2 };
    expect((await op('AddAndGetCount', 'writer', body)).status).toBe(200);
    expect((await op('AddAndGetCount', 'reader', body)).body.error?.message).toMatch(/may not update/);
    expect((await request('GET', `/v1/namespaces/${bestEffort}/counters/both`, tokens.reader)).status).toBe(200);
    expect((await request('GET', `/v1/namespaces/${bestEffort}/counters/both`, tokens.nobody)).status).toBe(403);
  });

  it('lists to each caller the namespaces it may read, and everything to the observer', async () => {
    const names = async (account: string): Promise<{ names: string[]; errors: unknown }> => {
      const r = await request('GET', '/v1/namespaces', tokens[account]);
      expect(r.status).toBe(200);
      const list = r.body as { namespaces: { name: string; kubernetes_namespace?: string }[]; errors: unknown };
      for (const n of list.namespaces) expect(n.kubernetes_namespace).toBe(home);
      return { names: list.namespaces.map((n) => n.name).sort(), errors: list.errors };
    };
    expect((await names('nobody')).names).toEqual([]);
    expect((await names('reader')).names).toEqual([bestEffort, eventual].sort());
    expect((await names('observer')).names).toEqual([bestEffort, eventual].sort());
  });

  it('shows /metrics and /status only to a caller with get on the path (the observer ClusterRole)', async () => {
    for (const p of ['/metrics', '/status', '/status.json']) {
      expect([p, (await request('GET', p, tokens.admin)).status]).toEqual([p, 403]);
      expect([p, (await request('GET', p, tokens.observer)).status]).toEqual([p, 200]);
    }
    const forbidden = await request('GET', '/metrics', tokens.writer);
    expect(forbidden.body.error).toEqual({
      code: 'PERMISSION_DENIED',
      message: `system:serviceaccount:${home}:writer may not get /metrics`,
    });
  });

  it('asks the cluster once per identity and decision while the answers are cached', async () => {
    const reviews = async (): Promise<Record<string, number>> => {
      const text = (await request('GET', '/metrics', tokens.observer)).body.text as string;
      const out: Record<string, number> = {};
      for (const m of text.matchAll(/^tally_auth_reviews_total\{review="(\w+)",result="(\w+)"\} (\d+)/gm))
        out[`${m[1]}:${m[2]}`] = Number(m[3]);
      return out;
    };
    // A cache of 1 s: a burst well inside it costs one TokenReview and one SubjectAccessReview.
    await new Promise((r) => setTimeout(r, 1100));
    const before = await reviews();
    await Promise.all(
      Array.from({ length: 40 }, () =>
        op('AddCount', 'writer', { namespace: bestEffort, counter_name: 'burst', delta: 1 }).then((r) =>
          expect(r.status).toBe(200),
        ),
      ),
    );
    const after = await reviews();
    const asked = (key: string): number => (after[key] ?? 0) - (before[key] ?? 0);
    expect(asked('token:authenticated')).toBeLessThanOrEqual(2);
    expect(asked('access:allowed')).toBeLessThanOrEqual(2);
    expect(asked('token:authenticated')).toBeGreaterThanOrEqual(1);
  });

  it('takes a revoked RoleBinding into account once the cached decision expires', async () => {
    const add = () => op('AddCount', 'writer', { namespace: bestEffort, counter_name: 'revoked', delta: 1 });
    expect((await add()).status).toBe(200);
    await rbac.deleteNamespacedRoleBinding({ name: 'writer', namespace: home });
    expect(canI('update', 'writer')).toBe(false);
    await waitFor('the runtime to refuse the writer whose binding is gone', async () => (await add()).status === 403, {
      timeoutMs: 10_000,
      intervalMs: 200,
    });
  });
});
