import type { Replication } from '../api/namespace-config';

/** A keyspace's replication as system_schema.keyspaces has it: a class (maybe fully qualified) and factors as text. */
export type StoredReplication = Record<string, string>;

function strategy(current: StoredReplication): string {
  return (current.class ?? '').replace(/^org\.apache\.cassandra\.locator\./, '');
}

/** Where `wanted` has more replicas than `current`: "replication_factor" for SimpleStrategy, else datacenter names. */
export function raisedReplication(current: StoredReplication, wanted: Replication): string[] {
  const sameClass = strategy(current) === wanted.class;
  if (wanted.class === 'SimpleStrategy') {
    return wanted.replicationFactor > (sameClass ? Number(current.replication_factor ?? 0) : 0)
      ? ['replication_factor']
      : [];
  }
  return Object.entries(wanted.dataCenters)
    .filter(([dc, rf]) => rf > (sameClass ? Number(current[dc] ?? 0) : 0))
    .map(([dc]) => dc)
    .sort();
}

/** Whether the keyspace already replicates as wanted (a datacenter with factor 0 is one it is not in). */
export function sameReplication(current: StoredReplication, wanted: Replication): boolean {
  if (strategy(current) !== wanted.class) return false;
  if (wanted.class === 'SimpleStrategy') return Number(current.replication_factor) === wanted.replicationFactor;
  const currentDcs = Object.entries(current).filter(([k]) => k !== 'class');
  const wantedDcs = Object.entries(wanted.dataCenters).filter(([, rf]) => rf > 0);
  return currentDcs.length === wantedDcs.length && wantedDcs.every(([dc, rf]) => Number(current[dc]) === rf);
}
