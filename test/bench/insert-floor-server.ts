import * as http from 'node:http';
import { resolveCounterNamespace } from '../../runtime/namespace/resolve';
import { eventBucket, timeBucket } from '../../runtime/storage/buckets';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../runtime/storage/client';
import { CoalescingClient } from '../../runtime/storage/coalescing-client';
import { qualified } from '../../runtime/storage/cql';

/**
 * The floor for a durable write behind an HTTP API in Node: a bare node:http server that parses the AddCount body and
 * writes its event row with one prepared INSERT (the same table, row, client settings and write coalescing as Tally),
 * with nothing else: no validation, write bounds, rollup trigger or metrics. `npm run bench` runs it beside AddCount
 * and the native counter, so the report shows how far the HTTP hop alone is from the baseline, and Tally from it.
 * Its rows go to counters named "floor-<name>", which the runtime under test never rolls up.
 *
 * usage: node insert-floor-server.js <namespace> (Cassandra settings from the environment, as for tally serve)
 */
const config = resolveCounterNamespace({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name: process.argv[2] ?? '' },
  spec: { counterType: 'Eventual' },
});
const { secondsPerBucket, bucketsPerCounter } = config.eventStorage;
const insert = `INSERT INTO ${qualified(config.cassandra.keyspace, config.cassandra.eventsTable)} (counter_name, time_bucket, event_bucket, event_time, event_id, kind, delta) VALUES (?, ?, ?, ?, ?, ?, ?)`;
const client = createCassandraClient(cassandraSettingsFromEnv(), { applicationName: 'tally-bench-floor' });
// The same per-event-loop-turn grouping of socket writes as Tally's, without it the floor pays more syscalls than Tally.
const coalesced = new CoalescingClient(client);

interface Body {
  counter_name: string;
  delta: number;
  idempotency_token: { token: string; generation_time: string };
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body;
    const at = Date.parse(body.idempotency_token.generation_time);
    const token = body.idempotency_token.token;
    const params = [
      `floor-${body.counter_name}`,
      BigInt(timeBucket(at, secondsPerBucket)),
      eventBucket(token, bucketsPerCounter),
      new Date(at),
      token,
      'add',
      BigInt(body.delta),
    ];
    coalesced.execute(insert, params, { prepare: true, isIdempotent: true }).then(
      () => {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': 2 });
        res.end('{}');
      },
      (err: Error) => {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end(err.message);
      },
    );
  });
});
server.keepAliveTimeout = 65_000;
client.connect().then(
  () =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : ''}\n`);
    }),
  (err: Error) => {
    process.stderr.write(`cannot connect to Cassandra: ${err.message}\n`);
    process.exit(1);
  },
);
process.on('SIGTERM', () => server.close(() => void client.shutdown().then(() => process.exit(0))));
