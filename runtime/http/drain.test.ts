import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { ConnectionDrain } from './drain';

/** A server whose /slow requests wait until the test releases them; everything else answers at once. */
async function serve(drain: ConnectionDrain) {
  const waiting: (() => void)[] = [];
  const server: Server = createServer(
    drain.wrap((req, res) => {
      const answer = () =>
        res
          .writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(req.url!) })
          .end(req.url);
      if (req.url === '/slow') waiting.push(answer);
      else answer();
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, waiting };
}

/**
 * One keep-alive GET over a raw socket (as a pooled client sends it: a server that wants the socket closed has to
 * say so); resolves with the status, the Connection header and whether the server then closed the socket.
 */
function get(port: number, path: string) {
  return new Promise<{ status: number; connection: string | undefined; closedByServer: boolean }>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    const done = (closedByServer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]);
      const connection = /\r\nconnection: ([^\r]*)\r\n/i.exec(text)?.[1]?.toLowerCase();
      resolve({ status, connection, closedByServer });
    };
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      // The whole response is in: wait a moment for the server to close the socket, or not.
      if (text.includes('\r\n\r\n') && text.endsWith(path)) timer ??= setTimeout(() => done(false), 300);
    });
    socket.on('end', () => done(true));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n`);
  });
}

describe('ConnectionDrain', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  let drain: ConnectionDrain;
  beforeEach(async () => {
    drain = new ConnectionDrain();
    s = await serve(drain);
  });
  afterEach(async () => {
    s.server.closeAllConnections();
    if (s.server.listening) await new Promise<void>((resolve) => s.server.close(() => resolve()));
  });

  it('leaves keep-alive alone until it starts', async () => {
    expect(drain.draining).toBe(false);
    expect(await get(s.port, '/')).toEqual({ status: 200, connection: 'keep-alive', closedByServer: false });
  });

  it('from start() on, closes the connection after every complete response', async () => {
    drain.start();
    expect(drain.draining).toBe(true);
    for (const path of ['/a', '/b']) {
      expect(await get(s.port, path)).toEqual({ status: 200, connection: 'close', closedByServer: true });
    }
  });

  it('closes the connection of a request that was in flight when it started', async () => {
    const slow = get(s.port, '/slow');
    while (s.waiting.length === 0) await new Promise((r) => setTimeout(r, 5));
    drain.start();
    s.waiting.shift()!();
    expect(await slow).toEqual({ status: 200, connection: 'close', closedByServer: true });
  });

  it('lets server.close() finish once in-flight requests are answered (no keep-alive socket left open)', async () => {
    const slow = get(s.port, '/slow');
    while (s.waiting.length === 0) await new Promise((r) => setTimeout(r, 5));
    drain.start();
    const closed = new Promise<void>((resolve) => s.server.close(() => resolve()));
    s.server.closeIdleConnections();
    s.waiting.shift()!();
    // Without the header the socket would stay open for the keep-alive timeout and close() would wait for it (the
    // client here gives up on it only after 300 ms).
    const outcome = await Promise.race([
      closed.then(() => 'closed'),
      new Promise((resolve) => setTimeout(resolve, 200, 'still open')),
    ]);
    expect(outcome).toBe('closed');
    expect((await slow).status).toBe(200);
  });
});
