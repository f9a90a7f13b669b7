import * as net from 'node:net';

export interface HttpReply {
  status: number;
  body: string;
}

/** Reconnect before sending on a connection idle this long: servers close idle keep-alive connections (node: 5 s). */
const IDLE_RECONNECT_MS = 4000;
const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * One keep-alive HTTP/1.1 connection with at most one request in flight. It understands exactly the responses the
 * servers under test send (a status line, headers with content-length, a body); anything else is an error, never a
 * guess.
 */
class Connection {
  private socket: net.Socket | undefined;
  private buffered: Buffer[] = [];
  private size = 0;
  private waiting: { resolve: (r: HttpReply) => void; reject: (e: Error) => void } | undefined;
  private lastUsed = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  send(request: string): Promise<HttpReply> {
    if (this.waiting) return Promise.reject(new Error('a request is already in flight on this connection'));
    if (this.socket && Date.now() - this.lastUsed > IDLE_RECONNECT_MS) this.drop();
    const socket = this.socket ?? this.connect();
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      socket.write(request);
    });
  }

  close(): void {
    this.drop();
  }

  private connect(): net.Socket {
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(socket, err));
    socket.on('close', () => this.fail(socket, new Error('the server closed the connection')));
    this.socket = socket;
    return socket;
  }

  private drop(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.buffered = [];
    this.size = 0;
  }

  private fail(socket: net.Socket, err: Error): void {
    if (socket !== this.socket) return;
    const waiting = this.waiting;
    this.waiting = undefined;
    this.drop();
    waiting?.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buffered.push(chunk);
    this.size += chunk.length;
    const data = this.buffered.length === 1 ? chunk : Buffer.concat(this.buffered, this.size);
    const headerEnd = data.indexOf(HEADER_END);
    if (headerEnd < 0) return;
    const head = data.toString('latin1', 0, headerEnd).toLowerCase();
    const length = /\r\ncontent-length: *(\d+)/.exec(head);
    if (!length) {
      this.fail(this.socket!, new Error(`response without content-length: ${head.split('\r\n')[0]}`));
      return;
    }
    const end = headerEnd + HEADER_END.length + Number(length[1]);
    if (data.length < end) {
      this.buffered = [data];
      return;
    }
    if (data.length > end) {
      this.fail(this.socket!, new Error('bytes after the response: the server answered something not asked for'));
      return;
    }
    const reply = { status: Number(head.slice(9, 12)), body: data.toString('utf8', end - Number(length[1]), end) };
    this.buffered = [];
    this.size = 0;
    this.lastUsed = Date.now();
    if (/\r\nconnection: *close/.test(head)) this.drop();
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve(reply);
  }
}

/**
 * The bench's HTTP client: `connections` keep-alive connections, one request at a time on each (no pipelining), the
 * request written as one string. The load generator shares the machine's cores with the servers it measures, so its
 * own cost per request is taken from them, and a costly client hides how far apart two servers are. undici's pool,
 * the cheapest library client we measured, cost 92 µs of CPU per AddCount against 49 µs for the cassandra-driver of
 * the baseline; this client costs 43 µs (`npm run bench`, "bench" CPU/op).
 */
export function httpClient(baseUrl: string, connections: number, headers: Record<string, string> = {}) {
  const url = new URL(baseUrl);
  const host = url.hostname;
  const port = Number(url.port);
  const idle = Array.from({ length: connections }, () => new Connection(host, port));
  const all = [...idle];
  const queue: ((c: Connection) => void)[] = [];
  // Extra headers (a bearer token) are written once into every request's prefix.
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const prefix = (method: string, path: string): string =>
    `${method} ${path} HTTP/1.1\r\nhost: ${url.host}\r\n${extra}`;
  return {
    async request(method: 'GET' | 'POST', path: string, body?: string): Promise<string> {
      const text =
        body === undefined
          ? `${prefix(method, path)}\r\n`
          : `${prefix(method, path)}content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      const conn = idle.pop() ?? (await new Promise<Connection>((resolve) => queue.push(resolve)));
      try {
        const reply = await conn.send(text);
        if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${reply.body}`);
        return reply.body;
      } finally {
        const next = queue.shift();
        if (next) next(conn);
        else idle.push(conn);
      }
    },
    close(): void {
      for (const c of all) c.close();
    },
  };
}
