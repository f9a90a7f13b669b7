import * as memjs from 'memjs';
import { Client } from 'memjs';
import type { Socket } from 'node:net';
import { intFromEnv } from '../../lib/env';
import { messageOf } from '../../lib/errors';

/** The cache is down or did not answer in time: callers fall back to Cassandra, or answer 503 (BestEffort). */
export class CacheUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CacheUnavailableError';
  }
}

/**
 * Memcached answered, and refused the operation or holds a value Tally cannot read (e.g. incr on a value that is not
 * a number, written under our key by someone else). The server is up: no cool-down, and the error is the key's alone.
 */
export class CacheValueError extends Error {
  constructor(
    message: string,
    readonly key: string,
  ) {
    super(message);
    this.name = 'CacheValueError';
  }
}

/** Binary-protocol status of an incr/decr on a value that is not a decimal number. */
const STATUS_NON_NUMERIC = 0x0006;

export interface CacheSettings {
  servers: string;
  /** Per-operation timeout. */
  timeoutMs: number;
  /** After a failure the cache is skipped for this long instead of making every request wait for a timeout. */
  cooldownMs: number;
}

export function cacheSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): CacheSettings | undefined {
  const servers = env.MEMCACHED_SERVERS?.trim();
  if (!servers) return undefined;
  return {
    servers,
    timeoutMs: intFromEnv(env, 'MEMCACHED_TIMEOUT_MS', 250, { min: 1, max: 60_000 }),
    cooldownMs: intFromEnv(env, 'MEMCACHED_COOLDOWN_MS', 2000, { min: 0, max: 600_000 }),
  };
}

/** BestEffort counts are stored offset by 2^63 so memcached's unsigned decr never clamps a negative count at 0. */
export const COUNT_OFFSET = 2n ** 63n;

const OP_INCREMENT = 0x05;
const OP_DECREMENT = 0x06;
const STATUS_OK = 0;

interface RawResponse {
  header: { status: number };
  val: Buffer;
}

/** memjs internals used for 64-bit incr/decr (memjs's own increment writes 32-bit amounts and misreads results). */
interface MemjsUtils {
  makeRequestBuffer(opcode: number, key: string, extras: Buffer, value: string, opaque: number): Buffer;
}
const memjsUtils = (memjs as unknown as { Utils: MemjsUtils }).Utils;

interface MemjsInternals {
  seq: number;
  incrSeq(): void;
  perform(
    key: string,
    request: Buffer,
    seq: number,
    callback: (err: Error | null, response: RawResponse | null) => void,
  ): void;
}

interface MemjsServer {
  _socket?: Socket;
  connected: boolean;
  write(blob: Buffer): void;
  /** Fails every request waiting on this server and drops its socket. */
  error(err: Error): void;
}

/**
 * memjs sends each request as its own socket write: a system call per cache read. Corking a connected socket until
 * the event loop's turn ends sends every request of that turn (one per HTTP request served in it) in one write, as
 * the Cassandra statements are (storage/coalescing-client.ts). Memcached answers them in order as before.
 *
 * memjs also forgets a closed socket without failing the requests written to it; they would wait for the deadline
 * in Cache.guarded. Failing them when the socket closes answers them at once, as a write error would.
 */
function coalesceWrites(client: Client): void {
  const watched = new WeakSet<Socket>();
  for (const server of (client as unknown as { servers: MemjsServer[] }).servers) {
    const write = server.write.bind(server);
    server.write = (blob: Buffer): void => {
      const socket = server._socket;
      if (socket && server.connected) {
        if (!watched.has(socket)) {
          watched.add(socket);
          socket.once('close', () => {
            if (!server._socket || server._socket === socket) server.error(new Error('the connection closed'));
          });
        }
        if (socket.writableCorked === 0) {
          socket.cork();
          setImmediate(() => socket.uncork());
        }
      }
      write(blob);
    };
  }
}

/**
 * A memcached client with a timeout on every operation and a short cool-down after a failure, so an outage costs
 * one timeout rather than one per request.
 */
export class Cache {
  private readonly client: Client;
  private downUntil = 0;

  constructor(readonly settings: CacheSettings) {
    this.client = Client.create(settings.servers, {
      retries: 1,
      timeout: settings.timeoutMs / 1000,
      conntimeout: settings.timeoutMs / 1000,
      keepAlive: true,
      failover: false,
      logger: { log: () => undefined },
    });
    coalesceWrites(this.client);
  }

  get available(): boolean {
    return Date.now() >= this.downUntil;
  }

  /**
   * Every operation has a deadline of its own: memjs's per-request timeout rides on the socket, so a request whose
   * connection closed under it would otherwise never settle. Failures start a cool-down.
   */
  private async guarded<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (!this.available)
      throw new CacheUnavailableError(`memcached (${this.settings.servers}) is cooling down after a failure`);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        op(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.settings.timeoutMs} ms`)),
            this.settings.timeoutMs,
          );
        }),
      ]);
    } catch (err) {
      // An answer about one key says nothing about the server: only a failure to get an answer starts a cool-down.
      if (err instanceof CacheValueError) throw err;
      this.downUntil = Date.now() + this.settings.cooldownMs;
      throw new CacheUnavailableError(`memcached ${what} failed: ${messageOf(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  async get(key: string): Promise<Buffer | null> {
    return this.guarded('get', async () => (await this.client.get(key)).value);
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.guarded('set', async () => {
      await this.client.set(key, value, { expires: ttlSeconds });
    });
  }

  async delete(key: string): Promise<void> {
    await this.guarded('delete', async () => {
      await this.client.delete(key);
    });
  }

  /**
   * Adds delta to an offset-encoded count, creating it when missing, and returns the new count. The TTL then runs
   * from this write: memcached's incr/decr apply their expiry only when they create the key, so a touch goes out
   * with it (same socket write, one round trip); without it a busy counter would vanish one TTL after its creation.
   * Binary-protocol incr/decr with a 64-bit amount and initial value, sent through memjs's connection handling.
   */
  async addToCount(key: string, delta: number, ttlSeconds: number): Promise<bigint> {
    const amount = BigInt(Math.abs(delta));
    const opcode = delta >= 0 ? OP_INCREMENT : OP_DECREMENT;
    const initial = COUNT_OFFSET + BigInt(delta);
    const extras = Buffer.alloc(20);
    extras.writeBigUInt64BE(amount, 0);
    extras.writeBigUInt64BE(initial, 8);
    extras.writeUInt32BE(ttlSeconds, 16);
    const [value] = await this.guarded('incr', () =>
      Promise.all([this.perform(opcode, key, extras), this.client.touch(key, ttlSeconds)]),
    );
    return value - COUNT_OFFSET;
  }

  /** The offset-encoded count stored at key, or undefined when missing. */
  async readCount(key: string): Promise<bigint | undefined> {
    const raw = await this.get(key);
    if (raw === null) return undefined;
    const text = raw.toString('latin1').trim();
    if (!/^\d{1,20}$/.test(text)) throw new CacheValueError(`the value at ${key} is not a count`, key);
    return BigInt(text) - COUNT_OFFSET;
  }

  private perform(opcode: number, key: string, extras: Buffer): Promise<bigint> {
    const internals = this.client as unknown as MemjsInternals;
    internals.incrSeq();
    const seq = internals.seq;
    const request = memjsUtils.makeRequestBuffer(opcode, key, extras, '', seq);
    return new Promise((resolve, reject) => {
      internals.perform(key, request, seq, (err, response) => {
        if (err || !response) return reject(err ?? new Error('no response'));
        const status = response.header.status;
        if (status === STATUS_NON_NUMERIC)
          return reject(new CacheValueError(`the value at ${key} is not a count`, key));
        if (status !== STATUS_OK)
          return reject(new CacheValueError(`memcached answered status ${status} for ${key}`, key));
        resolve(response.val.readBigUInt64BE(0));
      });
    });
  }

  /** memcached's stats of every server (get_hits, get_misses, ...). */
  async stats(): Promise<Record<string, string>[]> {
    return this.guarded('stats', () => {
      return new Promise((resolve, reject) => {
        const out: Record<string, string>[] = [];
        let pending = this.client.servers.length;
        this.client.stats((err, _server, stats) => {
          if (err) return reject(err);
          out.push(stats ?? {});
          if (--pending === 0) resolve(out);
        });
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
