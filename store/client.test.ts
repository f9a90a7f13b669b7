import { errors, types, type Client, type ClientOptions } from 'cassandra-driver';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cassandraSettingsFromEnv, createCassandraClient, isRefused, isUnavailable, readCaBundle } from './client';

const responseError = (code: number): Error => new errors.ResponseError(code, 'from the server');

describe('isUnavailable (answer 503, not 500)', () => {
  it.each([
    ['unavailable', types.responseErrorCodes.unavailableException],
    ['write timeout', types.responseErrorCodes.writeTimeout],
    ['read timeout', types.responseErrorCodes.readTimeout],
    ['overloaded', types.responseErrorCodes.overloaded],
    ['read failure', types.responseErrorCodes.readFailure],
    ['write failure', types.responseErrorCodes.writeFailure],
    ['bootstrapping', types.responseErrorCodes.isBootstrapping],
  ])('treats a server %s as unavailable', (_name, code) => {
    expect(isUnavailable(responseError(code))).toBe(true);
  });

  it('treats an unreachable cluster and a client-side timeout as unavailable', () => {
    expect(isUnavailable(new errors.NoHostAvailableError({}))).toBe(true);
    expect(isUnavailable(new errors.OperationTimedOutError('timed out'))).toBe(true);
  });

  it('does not hide bugs: a syntax or invalid-query error is not unavailability', () => {
    expect(isUnavailable(responseError(types.responseErrorCodes.syntaxError))).toBe(false);
    expect(isUnavailable(responseError(types.responseErrorCodes.invalid))).toBe(false);
    expect(isUnavailable(new TypeError('x is undefined'))).toBe(false);
  });
});

describe('isRefused (the statement itself is refused: do not retry it in a loop)', () => {
  it('is true for syntax, invalid, configuration and permission errors, and not for unavailability', () => {
    const codes = types.responseErrorCodes;
    for (const code of [codes.syntaxError, codes.invalid, codes.configError, codes.unauthorized]) {
      expect(isRefused(responseError(code))).toBe(true);
    }
    expect(isRefused(responseError(codes.unavailableException))).toBe(false);
    expect(isRefused(new errors.NoHostAvailableError({}))).toBe(false);
  });
});

describe('TLS settings: CASSANDRA_CA_FILE', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-ca-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  // A real CA certificate, made as the stack makes its own (test/stack/pki.sh).
  const pki = path.resolve(__dirname, '..', 'test', 'stack', 'pki.sh');
  execFileSync('bash', ['-c', `. "${pki}" && make_ca ca test-ca`], { cwd: dir, stdio: 'ignore' });
  const sslOf = (client: Client): ClientOptions['sslOptions'] =>
    (client as unknown as { options: ClientOptions }).options.sslOptions;
  const base = { CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042', CASSANDRA_LOCAL_DC: 'dc1' };

  it('reads the CA at start-up and makes every connection verified TLS', () => {
    const settings = cassandraSettingsFromEnv({ ...base, CASSANDRA_CA_FILE: path.join(dir, 'ca.crt') });
    expect(settings.tls?.ca).toContain('-----BEGIN CERTIFICATE-----');
    const client = createCassandraClient(settings);
    // The driver's own default would accept any certificate.
    expect(sslOf(client)).toEqual({ ca: [settings.tls!.ca], rejectUnauthorized: true });
  });

  it('without it, connects in plain TCP', () => {
    expect(cassandraSettingsFromEnv(base).tls).toBeUndefined();
    expect(sslOf(createCassandraClient(cassandraSettingsFromEnv(base)))).toBeUndefined();
  });

  it('refuses a missing file, a key instead of a certificate and a certificate that does not parse, naming the setting', () => {
    expect(() => readCaBundle(path.join(dir, 'nope.crt'))).toThrow(/CASSANDRA_CA_FILE: cannot read .*nope\.crt/);
    expect(() => readCaBundle(path.join(dir, 'ca.key'))).toThrow(/holds no PEM certificate/);
    const broken = file('broken.crt', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(() => readCaBundle(broken)).toThrow(/does not parse/);
  });

  it('keeps every certificate of a bundle', () => {
    const one = fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8');
    const bundle = file('bundle.crt', `# two CAs\n${one}\n${one}`);
    expect(readCaBundle(bundle).match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
  });
});
