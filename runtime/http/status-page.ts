import type { Registry } from 'prom-client';
import type { NamespaceRegistry } from '../counter/registry';
import type { RecentError, RecentErrors } from '../observability/recent-errors';

/** What GET /status.json answers and GET /status draws (its schema: `statusReport` in openapi.ts). */
export interface StatusReport {
  generated_at: string;
  ready: boolean;
  /** The checks of /readyz: cassandra, clock, namespaces, memcached (and draining). */
  checks: Record<string, { ok: boolean; detail: string }>;
  clock: { offset_seconds: number | null; uncertainty_seconds: number | null };
  namespaces: NamespaceStatus[];
  /** Configuration documents this process could not load (as in GET /v1/namespaces). */
  config_errors: string[];
  recent_errors: RecentError[];
}

/** Every number is null when the metric it comes from is not registered (e.g. renamed). */
export interface NamespaceStatus {
  name: string;
  counter_type: string;
  /** Null for BestEffort, which keeps its counts in Memcached only. */
  keyspace: string | null;
  ready: boolean;
  reason?: string;
  requests: { total: number | null; client_errors: number | null; server_errors: number | null };
  /** Eventual reads answered from a cache (this process's near cache or memcached) or not; null for the other types. */
  cache: { hits: number | null; misses: number | null; errors: number | null; hit_ratio: number | null } | null;
  /** Null for BestEffort (no rollups). Lag quantiles are estimated from the histogram since the process started. */
  rollup: {
    lag_p50_seconds: number | null;
    lag_p99_seconds: number | null;
    rolled: number | null;
    queue_depth: number | null;
    triggers_dropped: number | null;
  } | null;
}

export interface StatusDeps {
  registry: Pick<NamespaceRegistry, 'list' | 'errors'>;
  metrics: { registry: Registry };
  /** /readyz's verdict and checks (app.ts). */
  readiness: () => Promise<{ ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> }>;
  recentErrors: Pick<RecentErrors, 'list'>;
  now?: () => number;
}

interface Sample {
  value: number;
  labels: Record<string, string | number | undefined>;
  metricName?: string;
}

/**
 * The metrics the page reads, by name: the one place to follow a rename in observability/metrics.ts. A metric that
 * is not registered reads as undefined and shows as "—", so a rename costs a blank, never the page.
 */
async function readMetrics(registry: Registry) {
  const read = async (name: string): Promise<Sample[] | undefined> =>
    (await registry.getSingleMetric(name)?.get())?.values;
  return {
    requests: await read('tally_requests_total'),
    cache: await read('tally_cache_requests_total'),
    nearCache: await read('tally_near_cache_requests_total'),
    rollups: await read('tally_rollups_total'),
    rollupLag: await read('tally_rollup_lag_seconds'),
    queueDepth: await read('tally_rollup_queue_depth'),
    triggersDropped: await read('tally_rollup_triggers_dropped_total'),
    clockOffset: await read('tally_clock_offset_seconds'),
    clockUncertainty: await read('tally_clock_offset_uncertainty_seconds'),
  };
}

/** The sum of the samples that match, 0 when none do, null when the metric is not there. */
function sum(samples: Sample[] | undefined, match: (labels: Sample['labels']) => boolean): number | null {
  if (!samples) return null;
  return samples.filter((s) => match(s.labels)).reduce((total, s) => total + s.value, 0);
}

/**
 * A quantile of one namespace's histogram, as Prometheus's histogram_quantile estimates it: linear within the bucket
 * the rank falls in, and the highest finite bound when it falls in +Inf. Null without observations.
 */
export function histogramQuantile(q: number, samples: Sample[] | undefined, namespace: string): number | null {
  if (!samples) return null;
  const buckets = samples
    .filter((s) => s.labels.namespace === namespace && s.labels.le !== undefined)
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower;
      return lower + ((b.le - lower) * (rank - below)) / (b.count - below || 1);
    }
    lower = b.le;
    below = b.count;
  }
  return lower;
}

/** Everything the page shows, read at once. */
export async function collectStatus(deps: StatusDeps): Promise<StatusReport> {
  const [readiness, m] = await Promise.all([deps.readiness(), readMetrics(deps.metrics.registry)]);
  const namespaces = deps.registry.list().map((s): NamespaceStatus => {
    const name = s.config.name;
    const durable = s.config.counterType !== 'BestEffort';
    const of = (labels: Sample['labels']): boolean => labels.namespace === name;
    const cacheCount = (result: string): number | null => sum(m.cache, (l) => of(l) && l.result === result);
    // A read answered from this process's near cache never asks memcached; one it misses does, and counts there.
    const nearHits = sum(m.nearCache, (l) => of(l) && l.result === 'hit');
    const memcachedHits = cacheCount('hit');
    const hits = memcachedHits === null && nearHits === null ? null : (memcachedHits ?? 0) + (nearHits ?? 0);
    const misses = cacheCount('miss');
    const status = (l: Sample['labels']): number => Number(l.status);
    return {
      name,
      counter_type: s.config.counterType,
      keyspace: durable ? s.config.cassandra.keyspace : null,
      ready: s.ready,
      ...(s.reason ? { reason: s.reason } : {}),
      requests: {
        total: sum(m.requests, of),
        client_errors: sum(m.requests, (l) => of(l) && status(l) >= 400 && status(l) < 500),
        server_errors: sum(m.requests, (l) => of(l) && status(l) >= 500),
      },
      cache:
        s.config.counterType === 'Eventual'
          ? {
              hits,
              misses,
              errors: cacheCount('error'),
              hit_ratio: hits !== null && misses !== null && hits + misses > 0 ? hits / (hits + misses) : null,
            }
          : null,
      rollup: durable
        ? {
            lag_p50_seconds: histogramQuantile(0.5, m.rollupLag, name),
            lag_p99_seconds: histogramQuantile(0.99, m.rollupLag, name),
            rolled: sum(m.rollups, (l) => of(l) && l.result === 'rolled'),
            queue_depth: sum(m.queueDepth, of),
            triggers_dropped: sum(m.triggersDropped, of),
          }
        : null,
    };
  });
  const checks: StatusReport['checks'] = {};
  for (const [key, c] of Object.entries(readiness.checks)) checks[key] = { ok: c.ok, detail: c.detail ?? '' };
  return {
    generated_at: new Date((deps.now ?? Date.now)()).toISOString(),
    ready: readiness.ready,
    checks,
    clock: {
      offset_seconds: sum(m.clockOffset, () => true),
      uncertainty_seconds: sum(m.clockUncertainty, () => true),
    },
    namespaces,
    config_errors: [...deps.registry.errors],
    recent_errors: deps.recentErrors.list(),
  };
}

/** HTML that is already safe to embed; everything else interpolated into `markup` is escaped. */
class Safe {
  constructor(readonly text: string) {}
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

type Part = string | number | Safe | readonly Part[];

function emit(part: Part): string {
  if (part instanceof Safe) return part.text;
  if (typeof part === 'string') return escapeHtml(part);
  if (typeof part === 'number') return escapeHtml(String(part));
  return part.map(emit).join('');
}

/**
 * Escapes by default: namespace names, reasons and error messages come from users and stores. (Not named `html`:
 * prettier would reformat the templates as HTML.)
 */
function markup(strings: TemplateStringsArray, ...parts: Part[]): Safe {
  return new Safe(strings.reduce((out, s, i) => out + s + (i < parts.length ? emit(parts[i]!) : ''), ''));
}

const NOTHING = new Safe('');
const DASH = '—';
const count = (n: number | null): string => (n === null ? DASH : Math.round(n).toLocaleString('en-US'));
const percent = (r: number | null): string => (r === null ? DASH : `${(r * 100).toFixed(1)} %`);
function seconds(s: number | null): string {
  if (s === null) return DASH;
  const ms = s * 1000;
  if (Math.abs(ms) < 10) return `${ms.toFixed(1)} ms`;
  if (Math.abs(s) < 1) return `${ms.toFixed(0)} ms`;
  return `${s.toFixed(1)} s`;
}

const dot = (ok: boolean): Safe => markup`<span class="dot ${ok ? 'ok' : 'bad'}" aria-hidden="true"></span>`;

/** A check of /readyz. The clock's detail states the offset; the gauges' reading (JSON) may be a measurement older. */
function checkTile(label: string, check: { ok: boolean; detail: string } | undefined): Safe {
  if (!check) return NOTHING;
  return markup`<div class="tile">
<div class="label">${dot(check.ok)}${label}</div>
<div class="detail">${check.detail}</div>
</div>`;
}

function stat(label: string, value: string, bad = false): Safe {
  return markup`<div class="stat${bad ? ' warn' : ''}"><span>${label}</span><b>${value}</b></div>`;
}

function namespaceCard(ns: NamespaceStatus): Safe {
  const ratio = ns.cache?.hit_ratio ?? null;
  const width = ratio === null ? 0 : Math.max(0, Math.min(100, ratio * 100));
  const notReady = ns.ready ? NOTHING : markup` · not ready: ${ns.reason ?? ''}`;
  const cache = ns.cache
    ? markup`<div class="ratio"><span>cache hit ratio</span><b class="hit-ratio">${percent(ratio)}</b></div>
<div class="bar"><div style="width:${width.toFixed(1)}%"></div></div>`
    : NOTHING;
  const rollup = ns.rollup
    ? [
        stat('rollups', count(ns.rollup.rolled)),
        stat('lag p50', seconds(ns.rollup.lag_p50_seconds)),
        stat('lag p99', seconds(ns.rollup.lag_p99_seconds)),
        stat('queued', count(ns.rollup.queue_depth)),
        stat('dropped', count(ns.rollup.triggers_dropped), (ns.rollup.triggers_dropped ?? 0) > 0),
      ]
    : [];
  return markup`<section class="card" data-namespace="${ns.name}">
<header><h2>${dot(ns.ready)}${ns.name}</h2><span class="type ${ns.counter_type.toLowerCase()}">${ns.counter_type}</span></header>
<div class="keyspace">${ns.keyspace ?? 'Memcached only'}${notReady}</div>
${cache}
<div class="stats">
${stat('requests', count(ns.requests.total))}${stat('4xx', count(ns.requests.client_errors))}${stat(
    '5xx',
    count(ns.requests.server_errors),
    (ns.requests.server_errors ?? 0) > 0,
  )}${rollup}
</div>
</section>`;
}

function errorTable(errors: RecentError[]): Safe {
  if (errors.length === 0)
    return markup`<p class="empty">No server errors or failed rollups since the process started.</p>`;
  const rows = errors.map(
    (e) =>
      markup`<tr><td class="mono" title="${e.time}">${e.time.slice(11, 23)}</td><td>${e.namespace ?? DASH}</td><td class="code">${e.code}${e.count > 1 ? markup` <span class="times">×${e.count}</span>` : NOTHING}</td><td>${e.message}</td></tr>`,
  );
  return markup`<table class="errors">
<thead><tr><th>time (UTC)</th><th>namespace</th><th>code</th><th>message</th></tr></thead>
<tbody>${rows}</tbody>
</table>`;
}

const STYLE = new Safe(`
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#6b7385;--line:#e3e6ec;--ok:#1f9d55;--bad:#d64545;--accent:#3b6fd8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--ink)}
main{max-width:1160px;margin:0 auto;padding:20px 24px}
a{color:var(--accent)}
.top{display:flex;align-items:baseline;gap:14px;margin-bottom:16px}
.top h1{font-size:22px;margin:0;letter-spacing:.2px}
.top .when{color:var(--mute);margin-left:auto}
.pill{padding:2px 10px;border-radius:999px;font-weight:600;font-size:12px;color:#fff;background:var(--ok)}
.pill.bad{background:var(--bad)}
.tiles{display:grid;grid-template-columns:repeat(3,1fr);gap:12px;margin-bottom:18px}
.tile,.card,.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.panel{margin-bottom:18px}
.label{font-weight:600}
.detail,.keyspace{color:var(--mute);font-size:12px;overflow-wrap:anywhere}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:7px;vertical-align:1px}
.dot.ok{background:var(--ok)}.dot.bad{background:var(--bad)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px;margin-bottom:18px}
.card header{display:flex;align-items:center;justify-content:space-between;gap:8px}
.card h2{font-size:17px;margin:0;overflow-wrap:anywhere}
.type{font-size:11px;font-weight:700;text-transform:uppercase;letter-spacing:.6px;padding:2px 8px;border-radius:6px}
.type.eventual{background:#e6efff;color:#2a56b3}.type.accurate{background:#e5f6ec;color:#17794a}
.type.besteffort{background:#fff2df;color:#9a5b00}
.ratio{display:flex;justify-content:space-between;align-items:baseline;margin-top:10px}.ratio b{font-size:18px}
.bar{height:6px;background:var(--line);border-radius:3px;overflow:hidden}.bar div{height:100%;background:var(--accent)}
.stats{display:grid;grid-template-columns:repeat(4,1fr);gap:8px 10px;margin-top:12px}
.stat span{display:block;color:var(--mute);font-size:11px}.stat b{font-size:15px}.stat.warn b{color:var(--bad)}
h3{font-size:15px;margin:0 0 8px}
table{width:100%;border-collapse:collapse;font-size:13px}
th{text-align:left;color:var(--mute);font-weight:600;border-bottom:1px solid var(--line);padding:4px 8px 4px 0}
td{padding:5px 8px 5px 0;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:anywhere}
.mono,.code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;white-space:nowrap}.code{color:var(--bad)}
.empty{color:var(--mute);margin:4px 0}
.times{color:var(--mute);font-size:11px}
`);

/** How often the page reloads itself (a meta refresh: no script). */
export const REFRESH_SECONDS = 10;

/** The status page: server-rendered, self-contained (inline CSS, no script, no external asset). */
export function renderStatusPage(r: StatusReport): string {
  const draining = r.checks.draining
    ? markup`<div class="panel">${dot(false)}${r.checks.draining.detail}</div>`
    : NOTHING;
  const cards =
    r.namespaces.length === 0
      ? markup`<p class="empty">No namespaces served yet.</p>`
      : r.namespaces.map(namespaceCard);
  const configErrors =
    r.config_errors.length > 0
      ? markup`<div class="panel"><h3>Configuration problems</h3><ul>${r.config_errors.map((e) => markup`<li>${e}</li>`)}</ul></div>`
      : NOTHING;
  return markup`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Tally status</title>
<style>${STYLE}</style>
</head>
<body><main>
<div class="top">
<h1>Tally</h1>
<span class="pill${r.ready ? '' : ' bad'}">${r.ready ? 'ready' : 'not ready'}</span>
<span class="when">${r.generated_at.replace('T', ' ').slice(0, 19)} UTC · refreshes every ${REFRESH_SECONDS} s · <a href="/status.json">JSON</a></span>
</div>
<div class="tiles">
${checkTile('Cassandra', r.checks.cassandra)}
${checkTile('Memcached', r.checks.memcached)}
${checkTile('Clock offset', r.checks.clock)}
</div>
${draining}
<div class="cards">
${cards}
</div>
${configErrors}
<div class="panel">
<h3>Recent errors</h3>
${errorTable(r.recent_errors)}
</div>
</main></body>
</html>
`.text;
}
