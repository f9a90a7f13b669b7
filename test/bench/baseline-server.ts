import * as http from 'node:http';
import { Client } from 'memjs';

/**
 * The limit for a cache-hit read in this design: a bare node:http server that does one memjs get per request and
 * answers JSON. `npm run bench` compares GetCount (Eventual, cache hit) with it.
 *
 * usage: node baseline-server.js <port> (MEMCACHED_SERVERS from the environment)
 */
const client = Client.create(process.env.MEMCACHED_SERVERS, { keepAlive: true, logger: { log: () => undefined } });
const server = http.createServer((req, res) => {
  const key = decodeURIComponent((req.url ?? '/').slice(1));
  client.get(key).then(
    ({ value }) => {
      const body = JSON.stringify({ value: value?.toString() ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    },
    (err: Error) => {
      res.writeHead(503);
      res.end(err.message);
    },
  );
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : ''}\n`);
});
// Keep-alive connections a failed bench left open must not keep this process (and the bench waiting on it) alive.
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  client.close();
  process.exit(0);
});
