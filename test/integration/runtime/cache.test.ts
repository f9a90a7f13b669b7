import { randomUUID } from 'node:crypto';
import * as net from 'node:net';
import { Cache, CacheUnavailableError } from '../../../runtime/cache/memcached';
import { requireEnv } from '../../support/env';
import { TcpProxy } from '../../support/tcp-proxy';

/** The runtime's memcached client against the real memcached: requests of one event-loop turn share a socket write. */
describe('Cache (real memcached)', () => {
  const settings = { servers: requireEnv('MEMCACHED_SERVERS'), timeoutMs: 500, cooldownMs: 200 };
  let cache: Cache;

  beforeAll(() => {
    cache = new Cache(settings);
  });
  afterAll(() => cache.close());

  it('sends the requests of one event-loop turn in one socket write, and answers each with its own value', async () => {
    const prefix = `cache-${randomUUID()}`;
    // The first request connects; the rest go through the connected (and corked) socket.
    await cache.set(`${prefix}-warm`, 'x', 60);
    const writes = socketWrites(hostPort(settings.servers)[1]);
    try {
      const keys = Array.from({ length: 200 }, (_, i) => `${prefix}-${i}`);
      await Promise.all(keys.map((k, i) => cache.set(k, `value ${i}`, 60)));
      expect(writes.count()).toBe(1);
      writes.reset();
      const values = await Promise.all([...keys, `${prefix}-missing`].map((k) => cache.get(k)));
      expect(writes.count()).toBe(1);
      expect(values.map((v) => v?.toString() ?? null)).toEqual([...keys.map((_, i) => `value ${i}`), null]);
      // A request in a later turn is a write of its own.
      writes.reset();
      await cache.get(keys[0]!);
      await cache.get(keys[1]!);
      expect(writes.count()).toBe(2);
    } finally {
      writes.restore();
    }
  });

  it('keeps a count alive for the TTL after its LAST write, not its first', async () => {
    const key = `cache-ttl-${randomUUID()}`;
    // memcached's clock ticks in whole seconds, so an expiry can come up to a second early: margins of a second.
    await cache.addToCount(key, 1, 4);
    await new Promise((r) => setTimeout(r, 3000));
    await cache.addToCount(key, 1, 4);
    // 5.5 s after creation: gone if the TTL ran from the first write (memcached's incr alone does that).
    await new Promise((r) => setTimeout(r, 2500));
    expect(await cache.readCount(key)).toBe(2n);
    await new Promise((r) => setTimeout(r, 3500));
    expect(await cache.readCount(key)).toBeUndefined();
  });

  it('counts below zero and above 2^32 with interleaved increments and decrements in one turn', async () => {
    const key = `cache-count-${randomUUID()}`;
    const deltas = [5, -7, 2 ** 33, -(2 ** 33), -1, 3];
    const results = await Promise.all(deltas.map((d) => cache.addToCount(key, d, 60)));
    // Memcached applies them in the order they were written.
    let sum = 0n;
    expect(results).toEqual(deltas.map((d) => (sum += BigInt(d))));
    expect(await cache.readCount(key)).toBe(sum);
  });

  it('fails a turn of requests as unavailable when memcached is cut off, and recovers after the cool-down', async () => {
    const proxy = await new TcpProxy(...hostPort(settings.servers)).start();
    const viaProxy = new Cache({ ...settings, servers: proxy.address });
    try {
      const key = `cache-outage-${randomUUID()}`;
      await viaProxy.set(key, 'before', 60);
      proxy.cut();
      const during = await Promise.allSettled(Array.from({ length: 5 }, () => viaProxy.get(key)));
      for (const r of during) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CacheUnavailableError);
      }
      proxy.restore();
      await new Promise((r) => setTimeout(r, settings.cooldownMs + 50));
      expect((await viaProxy.get(key))?.toString()).toBe('before');
    } finally {
      viaProxy.close();
      await proxy.close();
    }
  });
});

describe('Cache timeouts', () => {
  it('fails a request that a connected server never answers, instead of waiting forever', async () => {
    // A server that accepts connections and reads requests but never replies.
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      sockets.add(s);
      s.resume();
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as net.AddressInfo;
    // A cool-down far longer than the test, so a slow turn between the two requests cannot outlast it.
    const cache = new Cache({ servers: `127.0.0.1:${port}`, timeoutMs: 300, cooldownMs: 60_000 });
    try {
      await expect(cache.get('never-answered')).rejects.toThrow(CacheUnavailableError);
      await expect(cache.get('never-answered')).rejects.toThrow(/cooling down/);
    } finally {
      cache.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});

/**
 * Counts the writes handed to the operating system on sockets to `port`: net.Socket passes each through _write (one
 * chunk) or _writev (everything buffered while corked), one system call each.
 */
function socketWrites(port: number) {
  type WriteFn = (this: net.Socket, ...args: unknown[]) => unknown;
  const proto = net.Socket.prototype as unknown as Record<'_write' | '_writev', WriteFn>;
  const originals = { _write: proto._write, _writev: proto._writev };
  let count = 0;
  for (const name of ['_write', '_writev'] as const) {
    const original = originals[name];
    proto[name] = function (this: net.Socket, ...args: unknown[]) {
      if (this.remotePort === port) count++;
      return original.apply(this, args);
    };
  }
  return {
    count: () => count,
    reset: () => void (count = 0),
    restore: () => Object.assign(proto, originals),
  };
}

function hostPort(servers: string): [string, number] {
  const [host, port] = servers.split(',')[0]!.split(':');
  return [host!, Number(port)];
}
