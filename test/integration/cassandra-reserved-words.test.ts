import { CQL_RESERVED_WORDS } from '../../api/cql-reserved';
import { createCassandraClient, cassandraSettingsFromEnv } from '../../store/client';
import { stackEnv } from '../support/runtime-harness';
import type { Client } from 'cassandra-driver';

/**
 * The reserved words the CRD refuses as keyspace names are the ones the real Cassandra refuses unquoted: `USE <word>`
 * is a syntax error for each of them, while an ordinary (or merely unreserved keyword) name parses and only fails
 * because no such keyspace exists. USE changes nothing, so no DDL runs.
 */
describe("CQL reserved words (api/cql-reserved.ts) against Cassandra's parser", () => {
  let client: Client;
  beforeAll(async () => {
    client = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
    await client.connect();
  });
  afterAll(async () => {
    await client?.shutdown();
  });

  const refusal = async (keyspace: string): Promise<string> => {
    try {
      await client.execute(`USE ${keyspace}`);
      return 'accepted';
    } catch (err) {
      const code = (err as { code?: number }).code;
      return code === 0x2000 ? 'syntax error' : `other: ${(err as Error).message}`;
    }
  };

  it('refuses each of them as an unquoted keyspace name with a syntax error', async () => {
    const answers = await Promise.all(CQL_RESERVED_WORDS.map(async (w) => [w, await refusal(w)] as const));
    expect(answers.filter(([, a]) => a !== 'syntax error')).toEqual([]);
    expect(answers).toHaveLength(CQL_RESERVED_WORDS.length);
  });

  it('parses ordinary names and unreserved keywords (the refusal is about the word, not the statement)', async () => {
    for (const name of ['tally_not_there', 'counter', 'key', 'type']) {
      expect([name, await refusal(name)]).toEqual([name, expect.stringMatching(/^other: .*not exist/i)]);
    }
  });
});
