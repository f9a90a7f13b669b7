import * as fs from 'node:fs';
import * as path from 'node:path';
import { Gauge, type Registry } from 'prom-client';

/**
 * The version of the package this code ships in: the nearest package.json above this file (the repository's when
 * run from source or dist/, /app/package.json in the images).
 */
export function packageVersion(from = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file))
      return String((JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }).version);
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

/**
 * A `<name>{version, component, nodejs_version} 1` gauge, the Prometheus convention for build information: joined
 * on by dashboards and alerts (`* on (instance) group_left (version)`) and counted by version during a rollout.
 */
export function registerBuildInfo(registry: Registry, name: string, component: string): Gauge<string> {
  const gauge = new Gauge({
    name,
    help: 'Build information: always 1, the version in its labels.',
    labelNames: ['version', 'component', 'nodejs_version'] as const,
    registers: [registry],
  });
  gauge.set({ version: packageVersion(), component, nodejs_version: process.version }, 1);
  return gauge;
}
