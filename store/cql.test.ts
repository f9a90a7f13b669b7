import { datacenterLiteral, ident, int, qualified, stringLiteral } from './cql';
import { createEventsTableCql, replicationLiteral, twcsWindowFor } from './ddl';
import { resolveCounterNamespace } from '../api/resolve';

describe('CQL identifiers and literals', () => {
  it.each(['orders', 'tally_orders_2', 'a'])('accepts %s', (name) => expect(ident(name)).toBe(name));
  it.each(['Orders', '1abc', 'a-b', 'x; DROP KEYSPACE y', 'a'.repeat(49), '', 'system"'])('refuses %j', (name) => {
    expect(() => ident(name)).toThrow(/refusing CQL identifier/);
  });
  it('qualifies only valid names', () => {
    expect(qualified('ks', 'events')).toBe('ks.events');
    expect(() => qualified('ks', 'ev ents')).toThrow();
  });
  it('refuses datacenter names that could escape the literal', () => {
    expect(datacenterLiteral('dc-1.east')).toBe("'dc-1.east'");
    expect(() => datacenterLiteral("dc1', 'x': '1")).toThrow(/refusing datacenter/);
  });
  it('doubles quotes in string literals and refuses control characters', () => {
    expect(stringLiteral("it's")).toBe("'it''s'");
    expect(() => stringLiteral('a\nb')).toThrow();
  });
  it('refuses non-integer numbers', () => {
    expect(() => int(1.5, 'x')).toThrow();
    expect(() => int(-1, 'x')).toThrow();
    expect(int(3, 'x')).toBe('3');
  });
});

describe('schema', () => {
  it.each([3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400])(
    'gives about 20-30 TWCS windows for a retention of %i s',
    (retention) => {
      const w = twcsWindowFor(retention);
      const seconds = { MINUTES: 60, HOURS: 3600, DAYS: 86400 }[w.unit] * w.size;
      const windows = retention / seconds;
      expect(windows).toBeGreaterThanOrEqual(18);
      expect(windows).toBeLessThanOrEqual(30);
    },
  );

  it('builds the events table with TWCS, the retention as TTL and the designed key', () => {
    const config = resolveCounterNamespace({
      apiVersion: 'tally.dev/v1alpha1',
      kind: 'CounterNamespace',
      metadata: { name: 'orders' },
      spec: {},
    });
    const cql = createEventsTableCql(config);
    expect(cql).toContain('CREATE TABLE IF NOT EXISTS tally_orders.events');
    expect(cql).toContain('PRIMARY KEY ((counter_name, time_bucket, event_bucket), event_time, event_id)');
    expect(cql).toContain('CLUSTERING ORDER BY (event_time DESC, event_id ASC)');
    expect(cql).toContain(
      "'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'HOURS', 'compaction_window_size': '7'",
    );
    expect(cql).toContain('default_time_to_live = 604800');
  });

  it('writes replication maps from validated values only', () => {
    expect(replicationLiteral({ class: 'NetworkTopologyStrategy', dataCenters: { dc2: 2, dc1: 3 } })).toBe(
      "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}",
    );
    expect(() => replicationLiteral({ class: 'NetworkTopologyStrategy', dataCenters: { "x'": 1 } })).toThrow();
  });
});
