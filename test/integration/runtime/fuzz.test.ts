import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { stackScript } from '../../stack/paths';
import { requireEnv } from '../../support/env';
import { kubeConfig } from '../../support/kube';
import {
  dropKeyspaces,
  FAST,
  keyspaceOf,
  startProcess,
  uniqueSuffix,
  writeNamespaces,
  type ChildRuntime,
  type TestNamespace,
} from '../../support/runtime-harness';

/**
 * Schemathesis fuzzes a real `tally serve` from its own /openapi.json: every operation, from the document's examples,
 * boundary values (coverage phase), random requests, valid and invalid (fuzzing phase), and sequences of calls
 * (stateful phase). It checks every answer: no 5xx, status codes, content types and bodies as documented, valid
 * requests accepted, invalid ones refused, 405 for undocumented methods. Bounded and as repeatable as schemathesis
 * allows: a fixed seed, one worker, no example database. It also draws on earlier answers (the server's tokens and
 * counts differ from run to run), so the cases are not byte for byte the same each time, nor quite as many.
 *
 * fuzz_hooks.py steers the valid requests to the namespaces served here (the document only knows their pattern) and
 * their generation_time into the accept window (which no schema can state); its docstring says why that is honest.
 */
const run = uniqueSuffix();
/** Eventual and Accurate accept generation times up to 60 s old; fuzz_hooks.py moves them up to 20 s back. */
const timed = { eventStorage: { ...FAST.eventStorage, acceptLimitSeconds: 60, maxFutureSkewSeconds: 5 } };
/** The runtime authenticates its callers, as in a cluster: its namespaces live in a Kubernetes namespace. */
const HOME = 'default';
const NAMESPACES: TestNamespace[] = [
  { name: `fuzz-be-${run}`, counterType: 'BestEffort', home: HOME },
  { name: `fuzz-ev-${run}`, counterType: 'Eventual', spec: timed, home: HOME },
  { name: `fuzz-ac-${run}`, counterType: 'Accurate', spec: timed, home: HOME },
];
/** The identity schemathesis calls as: a ServiceAccount the test binds to cluster-admin (any verb, any path). */
const ACCOUNT = `fuzz-${run}`;
/**
 * Per operation and phase. 150 make about 2,000 test cases in all (examples, coverage, fuzzing, and the stateful
 * phase following the link schemathesis infers from the namespace listing): about 45 s alone on 2 cores.
 */
const MAX_EXAMPLES = 150;
const SEED = 20241005;
/** The counter operations: each must be answered 2xx often, or the steering stopped working and little was tested. */
const COUNTER_OPERATIONS = [
  'POST /v1/counter/AddCount',
  'POST /v1/counter/AddAndGetCount',
  'POST /v1/counter/GetCount',
  'POST /v1/counter/ClearCount',
  'GET /v1/namespaces/{namespace}/counters/{counter_name}',
];

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, passing its stderr on as it comes when `progress` (installs say what they do). */
function runCommand(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; progress?: boolean; timeoutMs: number },
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (opts.progress) process.stderr.write(d);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${opts.timeoutMs} ms:\n${stdout}${stderr}`));
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Responses by operation and status, from schemathesis's NDJSON event stream. */
function statusesByOperation(ndjson: string): Map<string, Map<number, number>> {
  const byOp = new Map<string, Map<number, number>>();
  for (const line of ndjson.split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as {
      ScenarioFinished?: {
        recorder: { label: string; interactions?: Record<string, { response?: { status_code: number } | null }> };
      };
    };
    const recorder = event.ScenarioFinished?.recorder;
    if (!recorder) continue;
    const statuses = byOp.get(recorder.label) ?? new Map<number, number>();
    byOp.set(recorder.label, statuses);
    for (const { response } of Object.values(recorder.interactions ?? {})) {
      if (response) statuses.set(response.status_code, (statuses.get(response.status_code) ?? 0) + 1);
    }
  }
  return byOp;
}

describe('the runtime API fuzzed from its OpenAPI document (schemathesis)', () => {
  let st: string;
  let rt: ChildRuntime;
  let dir: string;
  let work: string;
  let token: string;

  beforeAll(async () => {
    const started = Date.now();
    process.stderr.write('[fuzz] installing schemathesis (test/stack/install-schemathesis.sh; cached after once)\n');
    const install = await runCommand('bash', [stackScript('install-schemathesis.sh')], {
      progress: true,
      timeoutMs: 900_000,
    });
    if (install.code !== 0)
      throw new Error(`install-schemathesis.sh failed (exit ${install.code}):\n${install.stderr}`);
    st = install.stdout.trim().split('\n').pop()!;
    process.stderr.write(`[fuzz] ${st} ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    const kc = kubeConfig();
    await kc
      .makeApiClient(CoreV1Api)
      .createNamespacedServiceAccount({ namespace: HOME, body: { metadata: { name: ACCOUNT } } });
    await kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
      body: {
        metadata: { name: ACCOUNT },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: ACCOUNT, namespace: HOME }],
      },
    });
    token = (
      await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
        name: ACCOUNT,
        namespace: HOME,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
    ).status!.token;
    dir = writeNamespaces(NAMESPACES);
    rt = await startProcess(
      dir,
      NAMESPACES.map((n) => n.name),
      { TALLY_AUTH: 'kubernetes', KUBECONFIG: requireEnv('KUBECONFIG') },
      token,
    );
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-fuzz-'));
  }, 1_000_000);

  afterAll(async () => {
    await rt?.stop();
    const kc = kubeConfig();
    await kc
      .makeApiClient(RbacAuthorizationV1Api)
      .deleteClusterRoleBinding({ name: ACCOUNT })
      .catch(() => undefined);
    await kc
      .makeApiClient(CoreV1Api)
      .deleteNamespacedServiceAccount({ name: ACCOUNT, namespace: HOME })
      .catch(() => undefined);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (work) fs.rmSync(work, { recursive: true, force: true });
    await dropKeyspaces(NAMESPACES.filter((n) => n.counterType !== 'BestEffort').map((n) => keyspaceOf(n.name)));
  });

  it('finds no server error and no answer that breaks the document', async () => {
    const started = Date.now();
    const report = path.join(work, 'events.ndjson');
    const args = [
      'run',
      `${rt.url}/openapi.json`,
      '--checks',
      'all',
      '--max-examples',
      String(MAX_EXAMPLES),
      '--seed',
      String(SEED),
      '--workers',
      '1',
      '--generation-database',
      'none',
      '--request-timeout',
      '10',
      // Every request carries the token; schemathesis's own auth checks send some without it and expect the 401.
      '--header',
      `Authorization: Bearer ${token}`,
      '--no-color',
      // Show the requests that fail as they were sent: the generated tokens are test data, not secrets.
      '--output-sanitize',
      'false',
      '--report',
      'ndjson',
      '--report-ndjson-path',
      report,
    ];
    process.stderr.write(`[fuzz] st ${args.join(' ')}\n`);
    const result = await runCommand(st, args, {
      cwd: work,
      timeoutMs: 600_000,
      env: {
        ...process.env,
        SCHEMATHESIS_HOOKS: path.join(__dirname, 'fuzz_hooks.py'),
        TALLY_FUZZ_NAMESPACES: JSON.stringify(NAMESPACES.map((n) => ({ name: n.name, counter_type: n.counterType }))),
        // No __pycache__ beside fuzz_hooks.py in the checkout.
        PYTHONDONTWRITEBYTECODE: '1',
      },
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const output = result.stdout + result.stderr;
    const summary = /(\d+) generated, ([^\n]*)/.exec(output);
    const cases = summary ? Number(summary[1]) : 0;
    const byOp = fs.existsSync(report)
      ? statusesByOperation(fs.readFileSync(report, 'utf8'))
      : new Map<string, Map<number, number>>();
    const table = [...byOp]
      .map(([op, statuses]) => `  ${op}: ${[...statuses].map(([s, n]) => `${s}×${n}`).join(' ')}`)
      .join('\n');
    process.stderr.write(
      `[fuzz] ${cases} test cases in ${seconds} s (${summary?.[2] ?? 'no summary'}); answers:\n${table}\n`,
    );

    if (result.code !== 0) {
      // What schemathesis found, and the runtime's own account of any 500 (logged at level error, with the stack).
      const logged = rt
        .output()
        .split('\n')
        .filter((l) => l.includes('"level":50'));
      throw new Error(`schemathesis exited with ${result.code}:\n${output}\nruntime errors:\n${logged.join('\n')}`);
    }
    expect(cases).toBeGreaterThanOrEqual(1000);
    // Each counter operation reached the counters (2xx) many times, not only validation and the 404.
    const reached = Object.fromEntries(
      COUNTER_OPERATIONS.map((op) => {
        const statuses = [...(byOp.get(op) ?? [])];
        return [op, statuses.filter(([s]) => s >= 200 && s < 300).reduce((sum, [, n]) => sum + n, 0) >= 50];
      }),
    );
    expect(reached).toEqual(Object.fromEntries(COUNTER_OPERATIONS.map((op) => [op, true])));
  }, 660_000);
});
