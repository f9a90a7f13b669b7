/**
 * The program the journey's client pod runs (with the Node.js of the runtime image): a user's application calling
 * the runtime by its Service DNS name. It must stand alone, since its source text is what the pod gets (see
 * clientScript): no imports, nothing from outside the function.
 *
 *   node client.js calls <url> '<json list of {op, body}>' [token file]   one request after the other; prints
 *                                                                      [{status, body}]
 *   node client.js load <url> <namespace> <counter> <workers> [token file]   AddCount(+1) until stdin ends; prints a
 *                                                                      LoadReport
 *
 * With a token file (the pod's ServiceAccount token) every request sends it as a bearer token, read at each call as
 * a rotated projected token must be.
 *
 * The load retries each add with the same idempotency token until it is acknowledged, as the API tells clients to,
 * and counts every failed attempt by kind.
 */
/** Where a pod finds its ServiceAccount's token (mounted by default). */
export const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface LoadReport {
  /** Adds acknowledged (200): each must be counted exactly once. */
  acked: number;
  /** Adds that never got a 200 within their attempts. */
  givenUp: number;
  /** Attempts that failed without an HTTP answer (refused, reset, hang-up). */
  connectionErrors: number;
  /** Attempts answered with another status than 200, by status. */
  statuses: Record<string, number>;
  /** The first few failures, for the test's message. */
  samples: string[];
}

export async function clientMain(argv: string[]): Promise<void> {
  const [mode, url] = argv;
  const tokenFile = argv[mode === 'calls' ? 3 : 5];
  // Not an import: the function's source text is the whole program, so no module helper may be referenced.
  const fs = process.getBuiltinModule('node:fs');
  const post = async (op: string, body: unknown): Promise<{ status: number; body: unknown }> => {
    const auth: Record<string, string> = tokenFile
      ? { authorization: `Bearer ${fs.readFileSync(tokenFile, 'utf8').trim()}` }
      : {};
    const res = await fetch(`${url}/v1/counter/${op}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, body: parsed };
  };

  if (mode === 'calls') {
    const calls = JSON.parse(argv[2]!) as { op: string; body: unknown }[];
    const replies = [];
    for (const c of calls) replies.push(await post(c.op, c.body));
    process.stdout.write(JSON.stringify(replies));
    return;
  }

  const [, , namespace, counter, workers] = argv;
  const report: LoadReport = { acked: 0, givenUp: 0, connectionErrors: 0, statuses: {}, samples: [] };
  let running = true;
  process.stdin.on('data', () => undefined);
  process.stdin.on('end', () => (running = false));
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const worker = async (): Promise<void> => {
    while (running) {
      const token = { token: crypto.randomUUID(), generation_time: new Date().toISOString() };
      let acked = false;
      for (let attempt = 0; attempt < 50 && !acked; attempt++) {
        try {
          const r = await post('AddCount', { namespace, counter_name: counter, delta: 1, idempotency_token: token });
          if (r.status === 200) acked = true;
          else {
            report.statuses[r.status] = (report.statuses[r.status] ?? 0) + 1;
            if (report.samples.length < 5) report.samples.push(`${r.status} ${JSON.stringify(r.body)}`);
          }
        } catch (err) {
          report.connectionErrors++;
          const e = err as Error & { cause?: { code?: string; message?: string } };
          if (report.samples.length < 5)
            report.samples.push(`${e.message}: ${e.cause?.code ?? e.cause?.message ?? ''}`);
        }
        if (!acked) await sleep(100);
      }
      if (acked) report.acked++;
      else report.givenUp++;
    }
  };
  await Promise.all(Array.from({ length: Number(workers) }, worker));
  process.stdout.write(JSON.stringify(report));
}

/** The client as a script for `node`: the compiled function and a call of it. */
export function clientScript(): string {
  return `(${clientMain.toString()})(process.argv.slice(2)).catch((e) => { console.error(e); process.exit(1); });\n`;
}
