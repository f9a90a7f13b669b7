import type { Client } from 'cassandra-driver';
import { ensureLoginRole, grantDataAccess, roleIdent, rollupRoleName, rollupRolePassword } from './roles';

/** A client whose every statement fails with the given error, recording what it was sent. */
function failingClient(err: Error): { client: Client; sent: string[] } {
  const sent: string[] = [];
  const client = {
    execute: (cql: string) => {
      sent.push(cql);
      return Promise.reject(err);
    },
  } as unknown as Client;
  return { client, sent };
}

describe('store/roles', () => {
  it('quotes plain role names and refuses anything else', () => {
    expect(roleIdent('tally_runtime')).toBe('"tally_runtime"');
    for (const bad of ['Tally', 'a"b', 'x; DROP KEYSPACE y', '', '_x', 'a-b', 'x'.repeat(129)]) {
      expect(() => roleIdent(bad)).toThrow(/refusing Cassandra role name/);
    }
  });

  it("names a rollup role by the CounterNamespace's uid", () => {
    expect(rollupRoleName('0F8FAD5B-D9CB-469F-A165-70867728950E')).toBe(
      'tally_rollup_0f8fad5b_d9cb_469f_a165_70867728950e',
    );
    expect(() => rollupRoleName('x"; DROP ROLE y')).toThrow();
  });

  it('derives a rollup password: stable, 64 hex digits, different per uid and per key', () => {
    const p = rollupRolePassword('key', 'uid-1');
    expect(p).toMatch(/^[0-9a-f]{64}$/);
    expect(rollupRolePassword('key', 'uid-1')).toBe(p);
    expect(rollupRolePassword('key', 'uid-2')).not.toBe(p);
    expect(rollupRolePassword('other', 'uid-1')).not.toBe(p);
    expect(p).not.toContain('key');
  });

  it('refuses a password it did not make, before sending anything', async () => {
    const { client, sent } = failingClient(new Error('unused'));
    await expect(ensureLoginRole(client, 'r', "x' AND SUPERUSER = true AND PASSWORD = 'y")).rejects.toThrow(
      /not made by the operator/,
    );
    expect(sent).toEqual([]);
  });

  it('keeps the password out of an error that quotes the statement, and keeps the error code', async () => {
    const password = rollupRolePassword('key', 'uid');
    const { client } = failingClient(
      Object.assign(new Error(`line 1:61 mismatched input near PASSWORD = '${password}'`), { code: 0x2000 }),
    );
    const err = (await ensureLoginRole(client, 'r', password).catch((e: unknown) => e)) as Error & { code?: number };
    expect(err.message).toMatch(/^while creating Cassandra role r: /);
    expect(err.message).not.toContain(password);
    expect(err.cause).toBeUndefined();
    expect(err.code).toBe(0x2000);
  });

  it('says what it was granting and keeps the cause', async () => {
    const cause = Object.assign(new Error('no AUTHORIZE permission'), { code: 0x2100 });
    const err = (await grantDataAccess(failingClient(cause).client, 'ks', 'r').catch((e: unknown) => e)) as Error;
    expect(err.message).toBe('while granting r SELECT and MODIFY on keyspace ks: no AUTHORIZE permission');
    expect(err.cause).toBe(cause);
  });
});
