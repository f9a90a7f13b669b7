import * as http from 'node:http';
import { resolveCounterNamespace } from '../../api/resolve';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../store/client';
import { CounterStore } from '../../runtime/storage/counter-store';

/**
 * The floor for a durable write behind an HTTP API in Node: a bare node:http server that parses the AddCount body and
 * writes its event row through Tally's own CounterStore.insertEvent (the same statement, driver settings and write
 * coalescing), with nothing else: no validation, write bounds, rollup trigger or metrics. `npm run bench` runs it
 * beside AddCount and the native counter, so the report shows how far the HTTP hop alone is from the baseline, and
 * Tally from it. Its rows go to counters named "floor-<name>", which the runtime under test never rolls up.
 *
 * usage: node insert-floor-server.js <namespace> (Cassandra settings from the environment, as for tally serve)
 */
const config = resolveCounterNamespace({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name: process.argv[2] ?? '' },
  spec: { counterType: 'Eventual' },
});
const client = createCassandraClient(cassandraSettingsFromEnv(), { applicationName: 'tally-bench-floor' });
const store = new CounterStore(client, config);

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
    const event = {
      counter: `floor-${body.counter_name}`,
      eventTimeMs: Date.parse(body.idempotency_token.generation_time),
      eventId: body.idempotency_token.token,
      kind: 'add' as const,
      delta: body.delta,
    };
    store.insertEvent(event).then(
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
// Keep-alive connections a failed bench left open must not keep this process (and the bench waiting on it) alive.
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void client.shutdown().finally(() => process.exit(0));
});
