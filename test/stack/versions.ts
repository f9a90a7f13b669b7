import * as fs from 'node:fs';
import { stackScript } from './paths';

export interface Versions {
  KUBE_VERSION: string;
  ETCD_VERSION: string;
  HELM_VERSION: string;
  CASSANDRA_VERSION: string;
  CONTAINERD_VERSION: string;
  CRICTL_VERSION: string;
  COREDNS_VERSION: string;
}

const KEYS: (keyof Versions)[] = [
  'KUBE_VERSION',
  'ETCD_VERSION',
  'HELM_VERSION',
  'CASSANDRA_VERSION',
  'CONTAINERD_VERSION',
  'CRICTL_VERSION',
  'COREDNS_VERSION',
];

/** Parses `KEY=value` lines; versions.sh is the single source the shell builders also read. */
export function parseVersions(text: string): Versions {
  const found: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=([^\s#]+)\s*(#.*)?$/.exec(line.trim());
    if (m) found[m[1]!] = m[2]!;
  }
  for (const key of KEYS) {
    if (!found[key]) throw new Error(`versions.sh: ${key} is missing`);
  }
  return found as unknown as Versions;
}

export function versions(): Versions {
  return parseVersions(fs.readFileSync(stackScript('versions.sh'), 'utf8'));
}
