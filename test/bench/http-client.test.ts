import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { httpClient } from './http-client';

function listen(server: net.Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

const close = (server: net.Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

describe('bench http client', () => {
  let server: http.Server;
  let url: string;
  let connections: number;
  let sockets: net.Socket[];

  beforeEach(async () => {
    connections = 0;
    sockets = [];
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const text = JSON.stringify({ method: req.method, url: req.url, type: req.headers['content-type'], body });
        res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-length': Buffer.byteLength(text) });
        res.end(text);
      });
    });
    server.on('connection', (socket: net.Socket) => {
      connections++;
      sockets.push(socket);
    });
    url = await listen(server);
  });

  afterEach(async () => {
    server.closeAllConnections();
    await close(server);
  });

  it('sends GETs and POSTs with their bodies and reuses the connection', async () => {
    const client = httpClient(url, 1);
    const body = JSON.stringify({ namespace: 'orders', counter_name: 'ä€😀' });
    const post = JSON.parse(await client.request('POST', '/v1/counter/AddCount', body));
    expect(post).toEqual({ method: 'POST', url: '/v1/counter/AddCount', type: 'application/json', body });
    for (let i = 0; i < 20; i++) {
      expect(JSON.parse(await client.request('GET', `/get/${i}`))).toMatchObject({ method: 'GET', url: `/get/${i}` });
    }
    expect(connections).toBe(1);
    client.close();
  });

  it('rejects a non-200 answer with its status and body, and the connection stays usable', async () => {
    const client = httpClient(url, 1);
    await expect(client.request('GET', '/missing')).rejects.toThrow(/^HTTP 404: .*"url":"\/missing"/);
    await expect(client.request('GET', '/ok')).resolves.toContain('"/ok"');
    expect(connections).toBe(1);
    client.close();
  });

  it('queues requests beyond its connections and answers each with its own response', async () => {
    const client = httpClient(url, 3);
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        client.request('POST', `/p/${i}`, String(i)).then((r) => JSON.parse(r) as Record<string, unknown>),
      ),
    );
    replies.forEach((r, i) => expect(r).toMatchObject({ url: `/p/${i}`, body: String(i) }));
    expect(connections).toBe(3);
    client.close();
  });

  it('reconnects after the server closed an idle connection', async () => {
    server.keepAliveTimeout = 50;
    const client = httpClient(url, 1);
    await client.request('GET', '/a');
    await new Promise((r) => sockets[0]!.once('close', r));
    await expect(client.request('GET', '/b')).resolves.toContain('"/b"');
    expect(connections).toBe(2);
    client.close();
  });
});

describe('bench http client against a raw server', () => {
  let raw: net.Server;
  let url: string;
  let answer: (socket: net.Socket) => void;

  beforeEach(async () => {
    raw = net.createServer((socket) => socket.once('data', () => answer(socket)));
    url = await listen(raw);
  });

  afterEach(() => close(raw));

  it('assembles a response that arrives in pieces', async () => {
    answer = (socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Len');
      setTimeout(() => socket.write('gth: 11\r\n\r\nhello'), 20);
      setTimeout(() => socket.end(' world'), 40);
    };
    const client = httpClient(url, 1);
    await expect(client.request('GET', '/')).resolves.toBe('hello world');
    client.close();
  });

  it('refuses a response without content-length, naming its status line', async () => {
    answer = (socket) => socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    const client = httpClient(url, 1);
    await expect(client.request('GET', '/')).rejects.toThrow('response without content-length: http/1.1 200 ok');
    client.close();
  });

  it('fails the request when the server closes the connection before answering', async () => {
    answer = (socket) => socket.destroy();
    const client = httpClient(url, 1);
    await expect(client.request('GET', '/')).rejects.toThrow(/closed the connection|ECONNRESET/);
    client.close();
  });
});
