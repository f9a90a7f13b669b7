import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BearerTokenSource, jwtExpiry } from './auth';

const jwt = (claims: object) =>
  ['{"alg":"RS256"}', JSON.stringify(claims), 'sig'].map((p) => Buffer.from(p).toString('base64url')).join('.');

describe('BearerTokenSource', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-auth-'));
    file = path.join(dir, 'token');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the file again once a JWT is within 10 s of its exp, even if the file looks the same', async () => {
    let now = 1_000_000_000_000;
    const expiring = jwt({ exp: now / 1000 + 60 });
    fs.writeFileSync(file, expiring);
    const source = new BearerTokenSource({ file }, () => now);
    expect(await source.token()).toBe(expiring);
    const read = jest.spyOn(fs.promises, 'readFile');
    now += 2000;
    expect(await source.token()).toBe(expiring);
    expect(read).not.toHaveBeenCalled();
    now += 49_000; // 9 s before exp
    expect(await source.token()).toBe(expiring);
    expect(read).toHaveBeenCalledTimes(1);
    read.mockRestore();
  });

  it('refuses an empty file', async () => {
    fs.writeFileSync(file, '\n');
    await expect(new BearerTokenSource({ file }).token()).rejects.toThrow(/is empty/);
  });
});

describe('jwtExpiry', () => {
  it('reads exp of a JWT, and nothing of other tokens', () => {
    expect(jwtExpiry(jwt({ exp: 1700000000 }))).toBe(1700000000_000);
    expect(jwtExpiry(jwt({ sub: 'x' }))).toBeUndefined();
    expect(jwtExpiry('opaque-token')).toBeUndefined();
    expect(jwtExpiry('a.b.c')).toBeUndefined();
  });
});
