import * as http from 'node:http';
import { createClient } from 'redis';
import { resolveCounterNamespace } from '../../api/resolve';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../store/client';
import { CounterStore } from '../../runtime/storage/counter-store';

/**
 * The servers a team would write instead of adopting Tally, and the floor under Tally: a bare node:http server that
 * parses the AddCount body and does one store operation, with nothing else (no validation, write bounds, rollup
 * triggers or metrics). `npm run bench` runs them beside AddCount:
 *
 *   insert <namespace>   the HTTP + INSERT floor: the event row through Tally's own CounterStore.insertEvent (the same
 *                        statement, driver settings and write coalescing), to counters named "floor-<name>", which
 *                        the runtime under test never rolls up
 *   counter <table>      a Cassandra counter column UPDATE per request (prepared): durable, not idempotent
 *   redis <url>          Redis INCRBY per request through node-redis: in memory, like BestEffort
 *
 * usage: node peer-server.js <mode> <arg> (Cassandra settings from the environment, as for tally serve)
 */
interface Body {
  counter_name: string;
  delta: number;
  idempotency_token: { token: string; generation_time: string };
}
type Apply = (body: Body) => Promise<unknown>;

async function store(mode: string, arg: string): Promise<{ apply: Apply; close: () => Promise<unknown> }> {
  if (mode === 'redis') {
    const redis = createClient({ url: arg });
    redis.on('error', () => undefined); // reported per request
    await redis.connect();
    return { apply: (b) => redis.incrBy(`peer:${b.counter_name}`, b.delta), close: () => redis.quit() };
  }
  const client = createCassandraClient(cassandraSettingsFromEnv(), { applicationName: `tally-bench-${mode}` });
  await client.connect();
  const close = () => client.shutdown();
  if (mode === 'counter') {
    const update = `UPDATE ${arg} SET c = c + ? WHERE name = ?`;
    return {
      apply: (b) => client.execute(update, [BigInt(b.delta), b.counter_name], { prepare: true }),
      close,
    };
  }
  if (mode !== 'insert') throw new Error(`mode must be insert, counter or redis, not "${mode}"`);
  const config = resolveCounterNamespace({
    apiVersion: 'tally.dev/v1alpha1',
    kind: 'CounterNamespace',
    metadata: { name: arg },
    spec: { counterType: 'Eventual' },
  });
  const events = new CounterStore(client, config);
  return {
    apply: (b) =>
      events.insertEvent({
        counter: `floor-${b.counter_name}`,
        eventTimeMs: Date.parse(b.idempotency_token.generation_time),
        eventId: b.idempotency_token.token,
        kind: 'add',
        delta: b.delta,
      }),
    close,
  };
}

async function main(): Promise<void> {
  const [mode = '', arg = ''] = process.argv.slice(2);
  const { apply, close } = await store(mode, arg);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      apply(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body).then(
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
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : ''}\n`);
  });
  // Keep-alive connections a failed bench left open must not keep this process (and the bench waiting on it) alive.
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void close().finally(() => process.exit(0));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`peer server failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
