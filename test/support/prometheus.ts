import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { messageOf } from '../../lib/errors';
import { freePort } from '../stack/ports';
import { waitFor } from '../stack/wait';
import { ensurePinnedPackage } from './debian';

/** Debian's prometheus package at the version test/stack/versions.sh pins, with promtool; a real Prometheus on loopback. */

/** Installs the pinned prometheus package (with promtool) on first use; its service is not started. */
export function ensurePrometheus(): Promise<void> {
  return ensurePinnedPackage({ command: 'promtool', package: 'prometheus', pin: 'PROMETHEUS_VERSION' });
}

/** promtool with the given arguments: its exit status and output. */
export function promtool(args: string[]): { status: number | null; output: string } {
  const res = spawnSync('promtool', args, { encoding: 'utf8' });
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

export interface ScrapeTarget {
  job: string;
  /** host:port on loopback; /metrics is scraped. */
  address: string;
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RuleState {
  name: string;
  type: 'alerting' | 'recording';
  health: string;
  state?: string;
  lastError?: string;
  alerts?: { labels: Record<string, string>; state: string }[];
}

export interface Prometheus {
  url: string;
  /** An instant query through /api/v1/query: the samples of its vector (a scalar is one sample without labels). */
  query(expr: string): Promise<Sample[]>;
  /** The rules of the loaded rule files, as /api/v1/rules reports them. */
  rules(): Promise<RuleState[]>;
  /** Waits until every target has been scraped successfully at least `count` times. */
  waitForScrapes(count: number, timeoutMs?: number): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

/**
 * A prometheus process on a free loopback port, scraping the targets every `scrapeSeconds` and evaluating
 * `ruleGroups` (written as a rules file) as often. Its data lives in a temporary directory removed by stop().
 */
export async function startPrometheus(
  targets: ScrapeTarget[],
  opts: { scrapeSeconds?: number; ruleGroups?: unknown[] } = {},
): Promise<Prometheus> {
  await ensurePrometheus();
  const interval = `${opts.scrapeSeconds ?? 1}s`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-prometheus-'));
  const rulesFile = path.join(dir, 'rules.yaml');
  fs.writeFileSync(rulesFile, yaml.dump({ groups: opts.ruleGroups ?? [] }));
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    yaml.dump({
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: [rulesFile],
      scrape_configs: targets.map((t) => ({ job_name: t.job, static_configs: [{ targets: [t.address] }] })),
    }),
  );
  const port = await freePort();
  const child = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.format=json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;

  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`${url}${pathAndQuery}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${pathAndQuery}: ${body.error ?? res.status}`);
    return body.data;
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      `prometheus to be ready on ${url}`,
      async () => (await fetch(`${url}/-/ready`).catch(() => undefined))?.status === 200,
      { timeoutMs: 30_000, intervalMs: 200, stillRunning: () => child.exitCode === null },
    );
  } catch (err) {
    await stop();
    throw new Error(`${messageOf(err)}\n${out}`, { cause: err });
  }

  const query = async (expr: string): Promise<Sample[]> => {
    const data = await api<{ resultType: string; result: unknown }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    if (data.resultType === 'scalar') return [{ metric: {}, value: data.result as [number, string] }];
    if (data.resultType !== 'vector') throw new Error(`${expr}: a ${data.resultType}, not an instant vector`);
    return data.result as Sample[];
  };
  return {
    url,
    output: () => out,
    stop,
    query,
    async rules() {
      const data = await api<{ groups: { rules: RuleState[] }[] }>('/api/v1/rules');
      return data.groups.flatMap((g) => g.rules);
    },
    async waitForScrapes(count, timeoutMs = 60_000) {
      const wanted = targets.map((t) => t.job);
      await waitFor(
        `${count} successful scrapes of ${wanted.join(', ')}`,
        async () => {
          // up is 1 for each successful scrape: its sum over the run is their number.
          const scraped = await query('sum by (job) (sum_over_time(up[1h]))');
          const done = new Set(scraped.filter((s) => Number(s.value[1]) >= count).map((s) => s.metric.job));
          return wanted.every((j) => done.has(j));
        },
        { timeoutMs, intervalMs: 500 },
      );
    },
  };
}
