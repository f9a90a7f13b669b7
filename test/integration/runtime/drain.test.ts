import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import {
  FAST,
  dropKeyspaces,
  keyspaceOf,
  startInProcess,
  startProcess,
  uniqueSuffix,
  writeNamespaces,
  type ChildRuntime,
} from '../../support/runtime-harness';
import { waitFor } from '../../stack/wait';

// `tally serve` as Kubernetes stops it: SIGTERM while clients keep sending adds over keep-alive connections.

const run = uniqueSuffix();
const NS = `drain-${run}`;
const COUNTER = `c-${run}`;
const DRAIN_SECONDS = 4;
/** The request held in flight across the drain carries a token older than FAST's 1 s accept limit. */
const NAMESPACE = {
  name: NS,
  counterType: 'Accurate' as const,
  spec: { eventStorage: { ...FAST.eventStorage, acceptLimitSeconds: 30 } },
};

interface Answer {
  status: number;
  connection: string | undefined;
  body: Record<string, unknown>;
  /** The request went out on a connection an earlier request had used. */
  reused: boolean;
}

function answer(req: ClientRequest, res: IncomingMessage): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (text += d));
    res.on('error', reject);
    res.on('end', () =>
      resolve({
        status: res.statusCode!,
        connection: res.headers.connection,
        body: JSON.parse(text) as Record<string, unknown>,
        reused: req.reusedSocket,
      }),
    );
  });
}

/** A request as a pooled client sends it: through a keep-alive Agent. */
function send(port: number, agent: Agent, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        agent,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => void answer(req, res).then(resolve, reject),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const addBody = (delta: number) => ({
  namespace: NS,
  counter_name: COUNTER,
  delta,
  idempotency_token: { token: randomUUID(), generation_time: new Date().toISOString() },
});

/** An AddCount whose body is sent in two halves: it stays in flight until `finish()`. */
function slowAdd(port: number, agent: Agent, delta: number) {
  const payload = JSON.stringify(addBody(delta));
  const half = Math.floor(payload.length / 2);
  let req!: ClientRequest;
  const answered = new Promise<Answer>((resolve, reject) => {
    req = request(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: 'POST',
        path: '/v1/counter/AddCount',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => void answer(req, res).then(resolve, reject),
    );
    req.on('error', reject);
    req.write(payload.slice(0, half));
  });
  return { answered, finish: () => req.end(payload.slice(half)) };
}

/** Resolves with the error code of a fresh TCP connection to the port (undefined: it was accepted). */
function connectOutcome(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** The runtime's JSON log lines. */
function logLines(rt: ChildRuntime): Record<string, unknown>[] {
  return rt
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function waitForLog(rt: ChildRuntime, msg: RegExp): Promise<Record<string, unknown>> {
  return waitFor(`the runtime to log ${msg}`, () => logLines(rt).find((l) => msg.test(String(l.msg))), {
    timeoutMs: 30_000,
    intervalMs: 20,
    stillRunning: () => rt.child.exitCode === null,
  });
}

function exited(rt: ChildRuntime, timeoutMs: number): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    if (rt.child.exitCode !== null || rt.child.signalCode !== null) {
      resolve({ code: rt.child.exitCode, signal: rt.child.signalCode });
      return;
    }
    const timer = setTimeout(
      () => reject(new Error(`tally serve did not exit within ${timeoutMs} ms:\n${rt.output()}`)),
      timeoutMs,
    );
    rt.child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('tally serve drains on SIGTERM', () => {
  let dir: string;
  const started: ChildRuntime[] = [];
  beforeAll(() => {
    dir = writeNamespaces([NAMESPACE]);
  });
  afterAll(async () => {
    for (const rt of started) if (rt.child.exitCode === null && rt.child.signalCode === null) rt.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    await dropKeyspaces([keyspaceOf(NS)]);
  });

  it('stays unready but serving for the drain, with Connection: close, then closes; every acknowledged add counts', async () => {
    const rt = await startProcess(dir, [NS], { TALLY_DRAIN_SECONDS: String(DRAIN_SECONDS) });
    started.push(rt);
    const port = Number(new URL(rt.url).port);
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    let acknowledged = 0;

    // Before the signal: keep-alive as usual (so the header below is the drain's doing).
    for (let i = 0; i < 3; i++) {
      const a = await send(port, agent, 'POST', '/v1/counter/AddCount', addBody(1));
      expect([a.status, a.connection]).toEqual([200, 'keep-alive']);
      acknowledged += 1;
    }
    // In flight across the whole drain: sent before the signal, its body finished only after the drain is over.
    const slow = slowAdd(port, new Agent({ keepAlive: true }), 7);
    await sleep(300);

    rt.child.kill('SIGTERM');
    const draining = await waitForLog(rt, /^draining/);
    const drainStart = Date.now();
    expect(draining.drainMs).toBe(DRAIN_SECONDS * 1000);

    const ready = await send(port, agent, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toMatchObject({ draining: { ok: false, detail: expect.stringMatching(/^draining/) } });
    expect(ready.connection).toBe('close');

    // A steady load until shortly before the drain ends, as clients send while the endpoint removal propagates.
    const answers: Answer[] = [];
    const errors: string[] = [];
    const worker = async (): Promise<void> => {
      while (Date.now() < drainStart + DRAIN_SECONDS * 1000 - 1000) {
        const delta = 1 + (answers.length % 3);
        try {
          const a = await send(port, agent, 'POST', '/v1/counter/AddCount', addBody(delta));
          answers.push(a);
          if (a.status === 200) acknowledged += delta;
        } catch (err) {
          errors.push((err as NodeJS.ErrnoException).code ?? String(err));
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(errors).toEqual([]);
    expect(answers.length).toBeGreaterThan(20);
    expect(answers.filter((a) => a.status !== 200 || a.connection !== 'close')).toEqual([]);
    // Every response closed its connection: no request during the drain went out on a used one.
    expect(answers.filter((a) => a.reused)).toEqual([]);
    const get = await send(port, agent, 'GET', `/v1/namespaces/${NS}/counters/${COUNTER}`);
    expect([get.status, get.connection]).toEqual([200, 'close']);

    // The drain is over: the port refuses new connections, while the request in flight is still being served.
    const over = await waitForLog(rt, /^drain delay over/);
    expect(over).toMatchObject({ phase: 'drain', hurried: false });
    expect(over.ms).toBeGreaterThanOrEqual(DRAIN_SECONDS * 1000 - 50);
    await waitFor('the port to refuse connections', async () => (await connectOutcome(port)) === 'ECONNREFUSED', {
      timeoutMs: 5000,
      intervalMs: 20,
    });
    expect(rt.child.exitCode).toBeNull();
    slow.finish();
    expect(await slow.answered).toMatchObject({ status: 200, connection: 'close' });
    acknowledged += 7;

    expect(await exited(rt, 20_000)).toEqual({ code: 0, signal: null });
    const phases = logLines(rt).filter((l) => typeof l.phase === 'string');
    expect(phases.map((l) => l.phase)).toEqual(['drain', 'http', 'namespaces', 'stores']);
    for (const p of phases) expect(typeof p.ms).toBe('number');
    expect(logLines(rt).find((l) => l.msg === 'tally runtime stopped')?.ms).toEqual(expect.any(Number));

    // Read back by a runtime that was not there: exactly what was acknowledged, each add once.
    const fresh = await startInProcess([NAMESPACE]);
    try {
      const res = await fetch(`${fresh.url}/v1/namespaces/${NS}/counters/${COUNTER}`);
      expect(((await res.json()) as { count: number }).count).toBe(acknowledged);
    } finally {
      await fresh.close();
    }
  });

  it('skips the rest of the drain on a second SIGTERM, and exits cleanly', async () => {
    const rt = await startProcess(dir, [NS], { TALLY_DRAIN_SECONDS: '600' });
    started.push(rt);
    rt.child.kill('SIGTERM');
    await waitForLog(rt, /^draining/);
    const port = Number(new URL(rt.url).port);
    expect((await send(port, new Agent({ keepAlive: true }), 'GET', '/readyz')).status).toBe(503);
    const hurried = Date.now();
    rt.child.kill('SIGTERM');
    expect(await exited(rt, 20_000)).toEqual({ code: 0, signal: null });
    expect(Date.now() - hurried).toBeLessThan(15_000);
    expect(logLines(rt).find((l) => l.phase === 'drain')).toMatchObject({ hurried: true });
    expect(logLines(rt).some((l) => l.msg === 'stop signal while shutting down')).toBe(true);
  });
});
