import { promises as fs } from 'node:fs';

/** Where the bearer token comes from: a fixed string, or a file (a Kubernetes projected ServiceAccount token). */
export type BearerToken = string | { file: string };

interface Cached {
  token: string;
  /** The file's identity when read: a rotation replaces the file (a new inode) or rewrites it. */
  stamp: string;
  /** The JWT's exp in ms, when the token is one. */
  expiresAtMs: number | undefined;
  checkedAtMs: number;
}

/** How often the file is looked at again when nothing else says it changed. */
const RECHECK_MS = 1000;
/** Read a JWT again this long before it expires: kubelet rotates well before, and the call must still arrive. */
const EXPIRY_MARGIN_MS = 10_000;

/**
 * The token to send as `Authorization: Bearer`. A file is read on first use and again when it changes (its inode,
 * size or mtime; kubelet swaps projected tokens in by a symlink), when its JWT is about to expire, and when the
 * runtime answered 401 (invalidate()), so a rotated token is picked up without a restart.
 */
export class BearerTokenSource {
  private cached: Cached | undefined;
  private reading: Promise<string> | undefined;

  constructor(
    private readonly source: BearerToken,
    private readonly now: () => number = Date.now,
  ) {}

  async token(): Promise<string> {
    if (typeof this.source === 'string') return this.source;
    const c = this.cached;
    const now = this.now();
    if (c) {
      if (now - c.checkedAtMs < RECHECK_MS) return c.token;
      const expiring = c.expiresAtMs !== undefined && c.expiresAtMs - EXPIRY_MARGIN_MS <= now;
      if (!expiring && (await this.stamp(this.source.file)) === c.stamp) {
        c.checkedAtMs = now;
        return c.token;
      }
    }
    // One read at a time, however many calls want it.
    this.reading ??= this.read(this.source.file).finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** Forget the token (the runtime refused it), so that the next call reads the file again. */
  invalidate(): void {
    this.cached = undefined;
  }

  get rereadable(): boolean {
    return typeof this.source !== 'string';
  }

  private async stamp(file: string): Promise<string> {
    const s = await fs.stat(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  }

  private async read(file: string): Promise<string> {
    const stamp = await this.stamp(file);
    const token = (await fs.readFile(file, 'utf8')).trim();
    if (!token) throw new Error(`the bearer token file ${file} is empty`);
    this.cached = { token, stamp, expiresAtMs: jwtExpiry(token), checkedAtMs: this.now() };
    return token;
  }
}

/** The exp claim of a JWT in ms, or undefined for a token that is not a JWT or has none. */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (token.split('.').length !== 3 || !payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
