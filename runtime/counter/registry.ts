import type { Client } from 'cassandra-driver';
import type { Cache } from '../cache/memcached';
import { RollupCache } from '../cache/rollup-cache';
import type { NearCache } from '../cache/near-cache';
import type { NamespaceConfig } from '../../api/namespace-config';
import type { NamespaceSnapshot } from '../namespace/source';
import type { Logger } from '../../lib/log';
import type { RuntimeMetrics } from '../observability/metrics';
import type { RecentErrors } from '../observability/recent-errors';
import { CounterStore } from '../storage/counter-store';
import { messageOf } from '../../lib/errors';
import { NamespaceNotFoundError, UnavailableError } from '../errors';
import { ensureSchema } from '../../store/ensure';
import { readTable } from '../../store/system-schema';
import { AccurateCounters } from './accurate';
import { BestEffortCounters } from './best-effort';
import { EventualCounters } from './eventual';
import type { CounterOps } from './types';
import type { ClockTrust } from '../clock/clock-guard';

export interface ServedNamespace {
  config: NamespaceConfig;
  /** The Kubernetes namespace of its CounterNamespace, where callers are authorized (absent for a plain file). */
  home?: string;
  ops: CounterOps;
  ready: boolean;
  /** Why the namespace is not ready (e.g. its tables do not exist yet). */
  reason?: string;
}

export interface RegistryDeps {
  cassandra: Client;
  cache: Cache | undefined;
  /** The process's near cache of Eventual checkpoints, shared by all its namespaces (none: reads ask memcached). */
  nearCache?: NearCache;
  metrics: RuntimeMetrics;
  log: Logger;
  /** Create missing keyspaces and tables (file mode with --provision); otherwise the operator does. */
  provision: boolean;
  /** The Cassandra request timeout: a namespace's settle margin should exceed it (see durable.ts). */
  requestTimeoutMs: number;
  clock: ClockTrust;
  /** Passed to the durable counters, which record their failed rollups in it. */
  recentErrors?: RecentErrors;
  now?: () => number;
}

/** A namespace's operations, or the error a client should see: not served here, or not ready yet. */
export function readyOps(name: string, entry: ServedNamespace | undefined): CounterOps {
  if (!entry) throw new NamespaceNotFoundError(name);
  if (!entry.ready)
    throw new UnavailableError(`namespace "${name}" is not ready: ${entry.reason ?? 'unknown reason'}`, {
      retryAfterSeconds: 5,
    });
  return entry.ops;
}

/** How often a namespace whose tables are missing is checked again. */
const RECHECK_MS = 2000;

/**
 * The namespaces this process serves, kept in line with the source's snapshots: new ones are prepared (schema
 * checked or provisioned), changed ones replaced, removed ones closed. A bad document never affects the others.
 */
export class NamespaceRegistry {
  private readonly served = new Map<string, ServedNamespace>();
  private applying: Promise<void> = Promise.resolve();
  private recheck: NodeJS.Timeout | undefined;
  loaded = false;
  errors: string[] = [];

  constructor(private readonly deps: RegistryDeps) {}

  /** Applies snapshots one at a time, in order. */
  apply(snapshot: NamespaceSnapshot): Promise<void> {
    this.applying = this.applying
      .then(() => this.applyNow(snapshot))
      .catch((err: unknown) => this.deps.log.error({ err: messageOf(err) }, 'applying namespaces failed'));
    return this.applying;
  }

  private async applyNow(snapshot: NamespaceSnapshot): Promise<void> {
    const { log } = this.deps;
    this.errors = snapshot.errors;
    for (const e of snapshot.errors) log.warn({ problem: e }, 'namespace document rejected');
    const wanted = new Map(snapshot.namespaces.map((c) => [c.name, c]));
    for (const [name, current] of this.served) {
      if (wanted.has(name)) continue;
      this.served.delete(name);
      await current.ops.close();
      log.info({ namespace: name }, 'namespace removed');
    }
    for (const config of snapshot.namespaces) {
      const current = this.served.get(config.name);
      const home = snapshot.homes?.[config.name];
      if (current && JSON.stringify(config) === JSON.stringify(current.config)) {
        // Only where it is authorized moved (a CounterNamespace of the same name and keyspace made elsewhere).
        if (home === undefined) delete current.home;
        else current.home = home;
        continue;
      }
      const timeout = this.deps.requestTimeoutMs;
      if (config.counterType !== 'BestEffort' && config.rollup.settleMarginMs <= timeout) {
        log.warn(
          { namespace: config.name, settleMarginMs: config.rollup.settleMarginMs, requestTimeoutMs: timeout },
          'the settle margin does not exceed the Cassandra request timeout: a slow write could land after a rollup passed its time, and no clock offset is tolerated (events and checkpoints wait)',
        );
      }
      const entry: ServedNamespace = {
        config,
        ...(home !== undefined ? { home } : {}),
        ops: this.createOps(config),
        ready: false,
        reason: 'checking schema',
      };
      // A new namespace is listed (not ready) while its schema is checked; a changed one keeps serving with its old
      // configuration until the new one is prepared, so a reload never answers 404 or 503 in between.
      if (!current) this.served.set(config.name, entry);
      await this.prepare(entry);
      if (current) {
        this.served.set(config.name, entry);
        await current.ops.close();
      }
      log.info(
        { namespace: config.name, counterType: config.counterType, ready: entry.ready, reason: entry.reason },
        current ? 'namespace reloaded' : 'namespace loaded',
      );
    }
    this.loaded = true;
    this.updateGauges();
    this.scheduleRecheck();
  }

  private createOps(config: NamespaceConfig): CounterOps {
    const { cassandra, cache, nearCache, metrics, log, now, clock, requestTimeoutMs, recentErrors } = this.deps;
    if (config.counterType === 'BestEffort') return new BestEffortCounters(config, cache);
    const deps = {
      store: new CounterStore(cassandra, config),
      cache: cache ? new RollupCache(cache, config) : undefined,
      metrics,
      log: log.child({ namespace: config.name }),
      clock,
      requestTimeoutMs,
      ...(recentErrors ? { recentErrors } : {}),
      ...(now ? { now } : {}),
    };
    return config.counterType === 'Eventual'
      ? new EventualCounters({ ...deps, ...(nearCache ? { nearCache } : {}) })
      : new AccurateCounters(deps);
  }

  /** BestEffort needs only memcached; durable types need their tables (created here when provisioning). */
  private async prepare(entry: ServedNamespace): Promise<void> {
    const { config } = entry;
    if (config.counterType === 'BestEffort') {
      entry.ready = true;
      delete entry.reason;
      return;
    }
    const { keyspace, eventsTable, rollupsTable } = config.cassandra;
    try {
      if (this.deps.provision) await ensureSchema(this.deps.cassandra, config);
      const missing: string[] = [];
      for (const table of [eventsTable, rollupsTable]) {
        if (!(await readTable(this.deps.cassandra, keyspace, table))) missing.push(`${keyspace}.${table}`);
      }
      entry.ready = missing.length === 0;
      if (entry.ready) delete entry.reason;
      else
        entry.reason = `table(s) ${missing.join(', ')} do not exist yet (provisioned by the operator, or serve --provision)`;
    } catch (err) {
      entry.ready = false;
      entry.reason = `checking the schema in Cassandra failed: ${messageOf(err)}`;
    }
  }

  private scheduleRecheck(): void {
    clearTimeout(this.recheck);
    if ([...this.served.values()].every((s) => s.ready)) return;
    this.recheck = setTimeout(() => {
      this.applying = this.applying.then(async () => {
        for (const entry of this.served.values()) if (!entry.ready) await this.prepare(entry);
        this.updateGauges();
        this.scheduleRecheck();
      });
    }, RECHECK_MS);
    this.recheck.unref();
  }

  private updateGauges(): void {
    const all = [...this.served.values()];
    this.deps.metrics.namespaces.set({ ready: 'true' }, all.filter((s) => s.ready).length);
    this.deps.metrics.namespaces.set({ ready: 'false' }, all.filter((s) => !s.ready).length);
    this.deps.metrics.namespaceErrors.set(this.errors.length);
  }

  /** The namespace served under this name, ready or not (readyOps says whether it can be used). */
  find(name: string): ServedNamespace | undefined {
    return this.served.get(name);
  }

  list(): ServedNamespace[] {
    return [...this.served.values()].sort((a, b) => a.config.name.localeCompare(b.config.name));
  }

  async close(): Promise<void> {
    clearTimeout(this.recheck);
    await this.applying;
    for (const entry of this.served.values()) await entry.ops.close();
    this.served.clear();
  }
}
