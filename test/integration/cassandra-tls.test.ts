import { Client } from 'cassandra-driver';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../store/client';
import { stackSuperuser } from '../stack/components/cassandra';
import { repoRoot } from '../stack/paths';
import { requireEnv } from '../support/env';

/**
 * The stack's Cassandra serves CQL with TLS only (client_encryption_options, optional: false): a client that trusts
 * the stack's CA (CASSANDRA_CA_FILE, as Tally's processes and pods do) connects; one that trusts another CA, or speaks
 * plain TCP, is refused before it can log in.
 */
describe('TLS to Cassandra (local stack)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-wrong-ca-'));
  const opened: Client[] = [];
  const open = (env: NodeJS.ProcessEnv): Client => {
    const c = createCassandraClient(cassandraSettingsFromEnv(env));
    opened.push(c);
    return c;
  };
  afterAll(async () => {
    await Promise.all(opened.map((c) => c.shutdown()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the stack CA, and Cassandra sees the connection as TLS under the operator role', async () => {
    await open(process.env).connect();
    // Only a superuser may list the connections.
    const { username, password } = stackSuperuser();
    const admin = open({ ...process.env, CASSANDRA_USERNAME: username, CASSANDRA_PASSWORD: password });
    const rs = await admin.execute('SELECT ssl_enabled, ssl_protocol, username FROM system_views.clients');
    const mine = rs.rows.filter((r) => r.get('username') === requireEnv('CASSANDRA_USERNAME'));
    expect(mine.length).toBeGreaterThan(0);
    for (const row of mine) {
      expect(row.get('ssl_enabled')).toBe(true);
      expect(String(row.get('ssl_protocol'))).toMatch(/^TLSv1\.[23]$/);
    }
  });

  it('refuses a client that trusts another CA: the certificate does not verify', async () => {
    // A CA made as the stack makes its own (test/stack/pki.sh), but not the one Cassandra's certificate chains to.
    const pki = path.join(repoRoot(), 'test', 'stack', 'pki.sh');
    execFileSync('bash', ['-c', `. "${pki}" && make_ca other some-other-ca`], { cwd: dir, stdio: 'ignore' });
    const c = open({ ...process.env, CASSANDRA_CA_FILE: path.join(dir, 'other.crt') });
    const err = (await c.connect().then(
      () => undefined,
      (e: unknown) => e,
    )) as { name?: string; innerErrors?: Record<string, Error> } | undefined;
    expect(err?.name).toBe('NoHostAvailableError');
    const reasons = Object.values(err!.innerErrors ?? {}).map((e) => `${(e as { code?: string }).code} ${e.message}`);
    expect(reasons.length).toBeGreaterThan(0);
    expect(reasons.join('\n')).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|certificate/i);
  });

  it('refuses a plain-TCP client (TLS is not optional)', async () => {
    const env = { ...process.env };
    delete env.CASSANDRA_CA_FILE;
    const c = open(env);
    await expect(c.connect()).rejects.toMatchObject({ name: 'NoHostAvailableError' });
  });

  it("the stack's certificate names both addresses clients use, and chains to CASSANDRA_CA_FILE", () => {
    const certFile = path.join(path.dirname(requireEnv('CASSANDRA_CA_FILE')), 'server.crt');
    const out = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-ext', 'subjectAltName'], {
      encoding: 'utf8',
    });
    expect(out).toContain('IP Address:127.0.0.1');
    expect(out).toContain(`IP Address:${requireEnv('CASSANDRA_CONTACT_POINTS').split(':')[0]}`);
    const verified = execFileSync('openssl', ['verify', '-CAfile', requireEnv('CASSANDRA_CA_FILE'), certFile], {
      encoding: 'utf8',
    });
    expect(verified.trim()).toBe(`${certFile}: OK`);
  });
});
