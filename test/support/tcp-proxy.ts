import * as net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a real service, for outage tests: cut() drops every connection and refuses new
 * ones, as a network partition or a dead node would look to a client; restore() lets traffic through again.
 * dropReplies() forwards requests but throws the answers away (the service did the work, the client never hears of
 * it); delayReplies(ms) holds every answer that long. restore() also ends those, closing the connections they
 * affected: a byte stream with answers missing cannot be resumed.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private down = false;
  private replies: { mode: 'pass' } | { mode: 'drop' } | { mode: 'delay'; ms: number } = { mode: 'pass' };
  private readonly disturbed = new Set<net.Socket>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static forAddress(address: string): TcpProxy {
    const [host, port] = address.split(':');
    return new TcpProxy(host!, Number(port));
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = net.createServer((client) => {
      if (this.down) {
        client.destroy();
        return;
      }
      const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.once('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        const r = this.replies;
        if (r.mode === 'pass') return void client.write(chunk);
        this.disturbed.add(client);
        // Timers of equal delay fire in order, so delayed answers keep their order.
        if (r.mode === 'delay') setTimeout(() => client.writable && client.write(chunk), r.ms);
      });
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.down = false;
    this.replies = { mode: 'pass' };
    for (const s of this.disturbed) s.destroy();
    this.disturbed.clear();
  }

  dropReplies(): void {
    this.replies = { mode: 'drop' };
  }

  delayReplies(ms: number): void {
    this.replies = { mode: 'delay', ms };
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
