import { Client } from 'memjs';
import { randomUUID } from 'node:crypto';
import { memcachedVersion } from '../stack/components/memcached';
import { requireEnv } from '../support/env';

describe('memcached (local stack)', () => {
  const servers = requireEnv('MEMCACHED_SERVERS');
  let client: Client;

  beforeAll(() => {
    client = Client.create(servers, { retries: 1, timeout: 2, logger: { log: () => undefined } });
  });
  afterAll(() => client.quit());

  it('answers the text-protocol version command with a real version', async () => {
    const version = await memcachedVersion(servers.split(',')[0]!);
    expect(version).toMatch(/^1\.\d+\.\d+/);
  });

  it('stores and returns a value through memjs', async () => {
    const key = `smoke-${randomUUID()}`;
    await client.set(key, 'hello', { expires: 60 });
    const { value } = await client.get(key);
    expect(value?.toString()).toBe('hello');
    await client.delete(key);
    expect((await client.get(key)).value).toBeNull();
  });
});
