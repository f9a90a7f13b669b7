import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { StatusReport } from '../../../runtime/http/status-page';
import { waitFor } from '../../stack/wait';
import { ensureChromium, loadPage, summarizePng } from '../../support/chromium';
import {
  call,
  dropKeyspaces,
  keyspaceOf,
  startInProcess,
  uniqueSuffix,
  type InProcessRuntime,
  type TestNamespace,
} from '../../support/runtime-harness';

const run = uniqueSuffix();
const EVENTUAL = `sp-ev-${run}`;
const ACCURATE = `sp-ac-${run}`;
const BEST_EFFORT = `sp-be-${run}`;
/** Its tables are dropped under the runtime: its rollups fail and its adds answer 503, the errors the page shows. */
const BROKEN = `sp-gone-${run}`;
const NAMESPACES: TestNamespace[] = [
  { name: EVENTUAL, counterType: 'Eventual' },
  { name: ACCURATE, counterType: 'Accurate' },
  { name: BEST_EFFORT, counterType: 'BestEffort' },
  // Its rollups wait 8 s after an add: time to drop the rollups table under them.
  { name: BROKEN, counterType: 'Accurate', spec: { rollup: { coalesceMs: 100, settleMarginMs: 8000 } } },
];
/** A counter name is the client's to choose; it reaches the page inside the 503's message. */
const HOSTILE = '<img src=x onerror=alert(1)>';

/** The card of one namespace in the rendered DOM. */
function card(dom: string, name: string): string {
  const start = dom.indexOf(`data-namespace="${name}"`);
  if (start < 0) throw new Error(`no card for ${name} in the page:\n${dom}`);
  return dom.slice(start, dom.indexOf('</section>', start));
}

/**
 * A real runtime after real traffic (adds, reads, a rollup, a failed rollup, a 503), its /status loaded in Debian's headless
 * chromium (no network but loopback): what people see is what the runtime knows.
 */
describe('the status page in headless chromium', () => {
  let rt: InProcessRuntime;
  let work: string;

  beforeAll(async () => {
    // The first run installs chromium (test/stack/install-apt.sh); later runs skip at once.
    await ensureChromium();
    rt = await startInProcess(NAMESPACES);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-status-'));
  }, 900_000);

  afterAll(async () => {
    await rt?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    await dropKeyspaces(NAMESPACES.filter((n) => n.counterType !== 'BestEffort').map((n) => keyspaceOf(n.name)));
  });

  it('shows each namespace with its type, the cache hit ratio and the recent error, escaped; the screenshot is a picture', async () => {
    const { url } = rt;
    for (let i = 0; i < 5; i++) {
      expect((await call(url, 'AddCount', { namespace: EVENTUAL, counter_name: 'checkout', delta: 1 })).status).toBe(
        200,
      );
      expect((await call(url, 'AddCount', { namespace: ACCURATE, counter_name: 'eur', delta: 2 })).status).toBe(200);
      expect((await call(url, 'AddCount', { namespace: BEST_EFFORT, counter_name: 'home', delta: 1 })).status).toBe(
        200,
      );
    }
    // An Eventual read answers the count once a rollup has passed the adds (about a second with FAST settings).
    await waitFor(
      'the Eventual adds to be rolled up',
      async () => (await call(url, 'GetCount', { namespace: EVENTUAL, counter_name: 'checkout' })).body.count === 5,
      { timeoutMs: 30_000, intervalMs: 300 },
    );
    // The rollup cached its checkpoint: these are hits.
    for (let i = 0; i < 3; i++) await call(url, 'GetCount', { namespace: EVENTUAL, counter_name: 'checkout' });
    expect((await call(url, 'GetCount', { namespace: ACCURATE, counter_name: 'eur' })).body.count).toBe(10);

    // A failed rollup: an add is taken, then its rollups table is dropped before the rollup runs. Then with the
    // events table dropped too, an add answers 503. DDL takes longer than the runtime's request timeout.
    const { keyspace, eventsTable, rollupsTable } = rt.runtime.registry.find(BROKEN)!.config.cassandra;
    const ddl = { readTimeout: 60_000 };
    expect((await call(url, 'AddCount', { namespace: BROKEN, counter_name: 'march', delta: 1 })).status).toBe(200);
    await rt.runtime.cassandra.execute(`DROP TABLE ${keyspace}.${rollupsTable}`, [], ddl);
    const statusJson = async (): Promise<StatusReport> =>
      (await (await fetch(`${url}/status.json`)).json()) as StatusReport;
    await waitFor(
      'the failed rollup to be listed',
      async () => (await statusJson()).recent_errors.find((e) => e.code === 'ROLLUP_FAILED'),
      { timeoutMs: 30_000, intervalMs: 300 },
    );
    await rt.runtime.cassandra.execute(`DROP TABLE ${keyspace}.${eventsTable}`, [], ddl);
    const failed = await call(url, 'AddCount', { namespace: BROKEN, counter_name: HOSTILE, delta: 1 });
    expect(failed.status).toBe(503);

    const report = await statusJson();
    const ev = report.namespaces.find((n) => n.name === EVENTUAL)!;
    expect(ev.cache!.hits).toBeGreaterThanOrEqual(3);
    expect(ev.cache!.hit_ratio).toBeGreaterThan(0);
    expect(ev.rollup!.rolled).toBeGreaterThanOrEqual(1);
    expect(ev.rollup!.lag_p50_seconds).not.toBeNull();
    expect(report.namespaces.find((n) => n.name === BROKEN)!.requests.server_errors).toBe(1);
    const error = report.recent_errors.find((e) => e.code === 'UNAVAILABLE');
    expect(error).toMatchObject({ namespace: BROKEN });
    expect(error!.message).toContain(HOSTILE);
    const rollupFailures = report.recent_errors.filter((e) => e.code === 'ROLLUP_FAILED');
    expect(rollupFailures).toEqual([
      expect.objectContaining({ namespace: BROKEN, message: expect.stringMatching(/^march: /) }),
    ]);

    const png = path.join(work, 'status.png');
    const dom = await loadPage(`${url}/status`, { screenshot: png });

    for (const ns of NAMESPACES) expect(card(dom, ns.name)).toContain(`>${ns.counterType}</span>`);
    expect(card(dom, EVENTUAL)).toContain(`<b class="hit-ratio">${(ev.cache!.hit_ratio! * 100).toFixed(1)} %</b>`);
    expect(card(dom, EVENTUAL)).toContain(keyspaceOf(EVENTUAL));
    expect(card(dom, BEST_EFFORT)).toContain('Memcached only');
    // The error's row: its namespace, its code, and the counter name as text. Unescaped, chromium would have parsed
    // it into an <img> element (and run its onerror).
    const row = dom.slice(dom.indexOf('<table class="errors">'));
    expect(row).toMatch(
      new RegExp(`<td>${BROKEN}</td><td class="code">UNAVAILABLE</td><td>[^<]*&lt;img src=x onerror=alert\\(1\\)&gt;`),
    );
    expect(dom).not.toContain('<img');
    expect(row).toMatch(
      new RegExp(
        `<td>${BROKEN}</td><td class="code">ROLLUP_FAILED( <span class="times">×\\d+</span>)?</td><td>march: `,
      ),
    );

    const picture = summarizePng(fs.readFileSync(png));
    expect({ width: picture.width, height: picture.height }).toEqual({ width: 1200, height: 800 });
    // A blank page is one colour; text, badges and the status dots make hundreds.
    expect(picture.colors).toBeGreaterThan(200);
  });
});
