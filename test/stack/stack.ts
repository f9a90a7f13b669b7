import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Component, Endpoint, Probe } from './component';
import { cassandra } from './components/cassandra';
import { cluster, setOperatorReplicas } from './components/cluster';
import { clusterDns } from './components/dns';
import { helm } from './components/helm';
import { kubernetes } from './components/kubernetes';
import { memcached } from './components/memcached';
import { node } from './components/node';
import { operator } from './components/operator';
import { runtime } from './components/runtime';
import { pidAlive, withFileLock } from './file-lock';
import { say } from './log';
import { ensureDir, stateDir } from './paths';
import { nodeEnabled, nodeWanted, otherNodeOwner } from './node-network';
import { isAlive, readRecord, stopProcess } from './processes';

/** Every component, in start order; `down` stops them in reverse. */
const ALL: Component[] = [memcached, cassandra, kubernetes, helm, node, clusterDns, operator, runtime, cluster];

/**
 * What this start runs. With the node (unless TALLY_STACK_NODE=0 or another stack on this machine has it): Tally in
 * pods, installed with helm. Without it: the operator and the runtime as processes on the host.
 */
function wanted(): Component[] {
  const stores = [memcached, cassandra, kubernetes, helm];
  return nodeEnabled() ? [...stores, node, clusterDns, cluster] : [...stores, operator, runtime];
}

/** What `up` runs, and what an earlier `up` recorded (so that `down` and `status` see it). */
export function components(): Component[] {
  const recorded = readState().components;
  const want = wanted();
  return ALL.filter((c) => want.includes(c) || c.name in recorded);
}

interface ComponentState {
  managed: boolean;
  endpoint: Endpoint;
  /** Who started it: `npm run up` (kept running) or a test run (stopped by the last test run to finish). */
  startedBy?: 'up' | 'test';
}

interface StackState {
  components: Record<string, ComponentState>;
}

function statePath(): string {
  return path.join(stateDir(), 'state.json');
}

export function envPath(): string {
  return path.join(stateDir(), 'env');
}

function readState(): StackState {
  try {
    return JSON.parse(fs.readFileSync(statePath(), 'utf8')) as StackState;
  } catch {
    return { components: {} };
  }
}

function writeState(state: StackState): void {
  ensureDir(stateDir());
  fs.writeFileSync(statePath(), JSON.stringify(state, null, 2));
  const lines = ['# Written by `npm run up`: the local stack Tally runs against. Load it with: . .tally/env'];
  for (const c of Object.values(state.components)) {
    for (const [key, value] of Object.entries(c.endpoint.env)) lines.push(`export ${key}=${shellQuote(value)}`);
  }
  fs.writeFileSync(envPath(), lines.join('\n') + '\n');
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function processesAlive(c: Component): boolean {
  return c.processes.every((p) => isAlive(readRecord(p)));
}

async function safeProbe(c: Component, endpoint: Endpoint): Promise<Probe> {
  try {
    return await c.probe(endpoint);
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

export interface UpResult {
  /** Components this call started (and so the caller may stop). */
  started: string[];
  env: Record<string, string>;
}

/**
 * Brings every component up: uses an existing service where the environment names one, keeps what an earlier `up`
 * started if it still answers, and installs and starts the rest, in parallel.
 */
export async function up(by: 'up' | 'test' = 'up', all?: Component[]): Promise<UpResult> {
  return withLock(async () => {
    if (!all) await stopUnwanted();
    return upLocked(by, all ?? components());
  });
}

/**
 * What an earlier `up` started but this one does not want (TALLY_STACK_NODE=0, another stack has the node now, or the
 * other way round) is stopped first: the node and the in-cluster Tally, or the host processes.
 */
async function stopUnwanted(): Promise<void> {
  const state = readState();
  const want = wanted();
  const unwanted = [...ALL].reverse().filter((c) => state.components[c.name] && !want.includes(c));
  if (unwanted.length === 0) return;
  for (const c of unwanted) {
    say(
      `${c.name}: not wanted by this start (${nodeEnabled() ? 'the node runs Tally in pods' : 'no node'}); stopping it`,
    );
    if (state.components[c.name]!.managed) await stopComponent(c);
    delete state.components[c.name];
  }
  writeState(state);
}

async function upLocked(by: 'up' | 'test', all: Component[]): Promise<UpResult> {
  const state = readState();
  const other = otherNodeOwner();
  if (nodeWanted() && other) say(`node: the stack in ${other} runs this machine's node; this one starts without it`);
  const started: string[] = [];
  for (const phase of [0, 1, 2] as const) {
    const toStart = await plan(
      state,
      all.filter((c) => c.phase === phase),
      by,
    );
    // Installs run in parallel (downloads and builds overlap); starts too, each waiting on its own readiness.
    await Promise.all(toStart.map(({ component }) => component.install()));
    const env = envOf(state);
    const results = await Promise.allSettled(
      toStart.map(async ({ component: c, previous, startedBy }) => {
        say(`${c.name}: starting`);
        const endpoint = await startOrStop(c, env, previous);
        const fingerprint = c.fingerprint?.();
        state.components[c.name] = {
          managed: true,
          endpoint: fingerprint ? { ...endpoint, fingerprint } : endpoint,
          // What `npm run up` started stays up after the tests, also when a test run restarted it (a new build).
          startedBy: startedBy === 'up' ? 'up' : by,
        };
        started.push(c.name);
        say(`${c.name}: ready at ${endpoint.address}`);
      }),
    );
    writeState(state);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length > 0) {
      throw new Error(
        failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n'),
      );
    }
  }
  return { started, env: envOf(state) };
}

/**
 * Starts a component; when it fails to become ready, stops whatever of it is still running (a process that never
 * answered, or one still starting after the deadline) so that a failed start leaves nothing behind. Its log stays.
 */
async function startOrStop(c: Component, env: Record<string, string>, previous?: Endpoint): Promise<Endpoint> {
  try {
    return await c.start(env, previous);
  } catch (err) {
    await stopComponent(c);
    throw err;
  }
}

/** Stops a component's recorded processes, last started first; true when any was still running. */
async function stopComponent(c: Component): Promise<boolean> {
  if (c.stop) return c.stop();
  let stoppedAny = false;
  for (const p of [...c.processes].reverse()) stoppedAny = (await stopProcess(p)) || stoppedAny;
  return stoppedAny;
}

function envOf(state: StackState): Record<string, string> {
  const env: Record<string, string> = {};
  for (const c of Object.values(state.components)) Object.assign(env, c.endpoint.env);
  return env;
}

interface ToStart {
  component: Component;
  /** The endpoint of an earlier start that is gone or outdated: the new start takes its ports again. */
  previous?: Endpoint;
  /** Who started the earlier one. */
  startedBy?: 'up' | 'test';
}

/**
 * Decides, per component, whether to use an existing service (named by the environment), keep what an earlier `up`
 * started (if it still answers and runs the same build), or start it; returns those to start.
 */
async function plan(state: StackState, phase: Component[], by: 'up' | 'test'): Promise<ToStart[]> {
  const toStart: ToStart[] = [];
  await Promise.all(
    phase.map(async (c) => {
      const previous = state.components[c.name];
      const external = c.fromEnvironment(process.env);
      // After `. .tally/env` the environment names the stack's own services: they are still the stack's to manage.
      const ours = previous?.managed === true && external?.address === previous.endpoint.address;
      if (external && !ours) {
        const probe = await safeProbe(c, external);
        if (!probe.ok) {
          throw new Error(
            `${c.name}: the existing service named by ${c.externalVars.join('/')} does not answer: ${probe.detail ?? 'no detail'}`,
          );
        }
        say(`${c.name}: using the existing service at ${external.address}`);
        state.components[c.name] = { managed: false, endpoint: external };
        return;
      }
      if (previous?.managed) {
        const probe = processesAlive(c)
          ? await safeProbe(c, previous.endpoint)
          : { ok: false, detail: 'its process is gone' };
        const sameBuild = (previous.endpoint.fingerprint ?? '') === (c.fingerprint?.() ?? '');
        if (probe.ok && sameBuild) {
          say(`${c.name}: already running at ${previous.endpoint.address}`);
          // `npm run up` adopts what a test run started: it stays up after the tests.
          if (by === 'up') previous.startedBy = 'up';
          return;
        }
        say(
          `${c.name}: ${sameBuild ? `the earlier start no longer answers (${probe.detail ?? 'no detail'})` : 'its build changed'}; starting it again`,
        );
      }
      // Whatever is left of an earlier start is stopped before starting afresh.
      await stopComponent(c);
      delete state.components[c.name];
      toStart.push({
        component: c,
        ...(previous?.managed ? { previous: previous.endpoint } : {}),
        ...(previous?.startedBy ? { startedBy: previous.startedBy } : {}),
      });
    }),
  );
  return toStart;
}

/** Stops what `up` started (all of it, or only the named components), by recorded pid. */
export async function down(only?: string[], all: Component[] = components()): Promise<void> {
  await withLock(() => downLocked(only, all));
}

async function downLocked(only: string[] | undefined, all: Component[]): Promise<void> {
  const state = readState();
  for (const c of [...all].reverse()) {
    if (only && !only.includes(c.name)) continue;
    const s = state.components[c.name];
    if (s && !s.managed) {
      delete state.components[c.name];
      continue;
    }
    if (await stopComponent(c)) say(`${c.name}: stopped`);
    delete state.components[c.name];
  }
  if (Object.keys(state.components).length === 0) {
    fs.rmSync(statePath(), { force: true });
    fs.rmSync(envPath(), { force: true });
  } else {
    writeState(state);
  }
}

export interface StatusLine {
  name: string;
  running: boolean;
  managed: boolean;
  address: string;
  version: string;
  detail?: string;
}

export async function status(): Promise<StatusLine[]> {
  const state = readState();
  return Promise.all(
    components().map(async (c): Promise<StatusLine> => {
      const s =
        state.components[c.name] ??
        (c.fromEnvironment(process.env) && { managed: false, endpoint: c.fromEnvironment(process.env)! });
      if (!s) return { name: c.name, running: false, managed: true, address: '-', version: '-' };
      const probe =
        s.managed && !processesAlive(c) ? { ok: false, detail: 'process not running' } : await safeProbe(c, s.endpoint);
      return {
        name: c.name,
        running: probe.ok,
        managed: s.managed,
        address: s.endpoint.address,
        version: probe.version ?? '-',
        ...(probe.detail ? { detail: probe.detail } : {}),
      };
    }),
  );
}

/**
 * One `up` or `down` at a time per state directory: two test runs (or a test run and `npm run up`) starting the same
 * stack would otherwise each decide the other's half-started Cassandra is dead and restart it. A lock left by a
 * process that no longer exists is taken over.
 */
function withLock<T>(fn: () => Promise<T>): Promise<T> {
  // A first start may build Kubernetes under the lock.
  const opts = { timeoutMs: 30 * 60_000, doing: 'starting or stopping the stack' };
  return withFileLock(path.join(ensureDir(stateDir()), 'stack.lock'), opts, fn);
}

function usersDir(): string {
  return ensureDir(path.join(stateDir(), 'test-runs'));
}

/** A test run says it uses the stack; the last one to finish stops what test runs started. */
export function registerTestRun(): void {
  fs.writeFileSync(path.join(usersDir(), String(process.pid)), new Date().toISOString());
}

/** Ends this test run's use of the stack; stops what test runs started when no other test run is still going. */
export async function releaseTestRun(all: Component[] = components()): Promise<void> {
  fs.rmSync(path.join(usersDir(), String(process.pid)), { force: true });
  const others = fs.readdirSync(usersDir()).filter((f) => {
    if (pidAlive(Number(f))) return true;
    fs.rmSync(path.join(usersDir(), f), { force: true });
    return false;
  });
  if (others.length > 0) return;
  const state = readState();
  const byTests = Object.entries(state.components)
    .filter(([, c]) => c.managed && c.startedBy === 'test')
    .map(([name]) => name);
  if (byTests.length > 0) await down(byTests, all);
  // The in-cluster operator, paused while tests ran (global setup), watches again while its node stays up (a test run
  // leaves the release in the cluster when it stops it).
  if (state.components[cluster.name]?.managed && !byTests.includes('node')) {
    await setOperatorReplicas(envOf(state), 1);
  }
}
