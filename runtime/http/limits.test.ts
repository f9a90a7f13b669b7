import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import type { Server } from 'node:http';
import { createLimitedServer, httpLimitsFromEnv, type HttpLimits } from './limits';

const LIMITS: HttpLimits = { headersTimeoutMs: 300, requestTimeoutMs: 600, idleTimeoutMs: 400, maxConnections: 2 };

/** Opens a raw connection, writes `sent`, and resolves with what the server answered when it closed the socket. */
function rawClient(port: number, sent: string): { socket: net.Socket; closed: Promise<{ text: string; ms: number }> } {
  const started = Date.now();
  const socket = net.connect({ port, host: '127.0.0.1' });
  let text = '';
  socket.on('data', (d) => (text += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write(sent);
  const closed = new Promise<{ text: string; ms: number }>((resolve) =>
    socket.once('close', () => resolve({ text, ms: Date.now() - started })),
  );
  return { socket, closed };
}

describe('HTTP limits', () => {
  let server: Server;
  let port: number;

  beforeEach(async () => {
    server = createLimitedServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    }, LIMITS);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('answers 408 and disconnects a client that sends its headers too slowly', async () => {
    const { closed } = rawClient(port, 'POST /v1/counter/AddCount HTTP/1.1\r\nHost: x\r\n');
    const { text, ms } = await closed;
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeLessThan(5000);
  });

  it('answers 408 and disconnects a client that trickles its body', async () => {
    const { socket, closed } = rawClient(port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a"');
    const trickle = setInterval(() => socket.write(' '), 100);
    const { text, ms } = await closed;
    clearInterval(trickle);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeLessThan(5000);
  });

  it('closes an idle keep-alive connection', async () => {
    const { closed } = rawClient(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const { text, ms } = await closed;
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    // Node's own default would keep it for 5 s.
    expect(ms).toBeLessThan(2000);
  });

  it('refuses connections beyond the limit', async () => {
    const held = [
      rawClient(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      rawClient(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    ];
    await new Promise((r) => setTimeout(r, 100));
    const third = rawClient(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const { text, ms } = await third.closed;
    expect({ text, fast: ms < 300 }).toEqual({ text: '', fast: true });
    for (const h of held) h.socket.destroy();
  });

  it('reads its limits from the environment, checked at start', () => {
    expect(httpLimitsFromEnv({})).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 65_000,
      maxConnections: 10_000,
    });
    expect(() => httpLimitsFromEnv({ TALLY_HTTP_MAX_CONNECTIONS: 'many' })).toThrow(
      'TALLY_HTTP_MAX_CONNECTIONS must be an integer from 1 to 1000000, got "many"',
    );
    expect(() =>
      httpLimitsFromEnv({ TALLY_HTTP_HEADERS_TIMEOUT_MS: '5000', TALLY_HTTP_REQUEST_TIMEOUT_MS: '1000' }),
    ).toThrow('TALLY_HTTP_HEADERS_TIMEOUT_MS (5000) must not exceed TALLY_HTTP_REQUEST_TIMEOUT_MS (1000)');
  });
});
