import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  AcceptWindowExceededError,
  ConnectionError,
  RequestTimeoutError,
  RetriesExhaustedError,
  TallyApiError,
  TallyClient,
  TallyError,
  UnavailableError,
  type CountResponse,
  type IdempotencyToken,
  type NamespaceList,
} from '../client/src';
import { intOption, stringOption } from './options';

/** The exit codes of add, get, clear and namespaces (docs/cli.md); 2 is a usage error, as for every command. */
export const EXIT = { ok: 0, failure: 1, usage: 2, refused: 3, unavailable: 4 } as const;

const common = `common options:
  --url URL           the runtime's base URL                                    [TALLY_URL]
  --json              print the API's JSON answer (errors too, as {"error": ...}) instead of text
  --timeout-ms N      time limit of one attempt (default 2000)                  [TALLY_TIMEOUT_MS]
  --hedge-ms N        send the call again (same token) if it has not answered in N ms (default 0: off) [TALLY_HEDGE_MS]
  --token-file PATH   send the file's contents as a bearer token, read again when it changes
                      [TALLY_TOKEN_FILE; TALLY_TOKEN gives the token itself]
  -h, --help          this text

exit codes: 0 done, 3 refused (a 4xx: bad argument, unknown namespace, count out of range), 4 unavailable (503,
timeouts or connection errors after the retries), 2 usage error, 1 anything else (a 500, an unreadable token file).`;

const help = {
  add: `usage: tally add NAMESPACE COUNTER [DELTA] [options]

Adds DELTA (default 1, may be negative: tally add orders checkout -3) to a counter with AddCount. The idempotency
token is made before the first attempt and every retry sends it, so the add counts at most once; retries stop when
the namespace's accept window would close (exit 4, and the message says whether it may have been counted).

options:
  --get               AddAndGetCount: print the count right after the add
  --token TOKEN       the idempotency token to send (with --generation-time): to send an earlier add again
  --generation-time T its generation_time (RFC 3339), as the earlier add printed it
${common}`,
  get: `usage: tally get NAMESPACE COUNTER [options]

Prints a counter's count (GetCount), with the instant it is exact for (Eventual and Accurate). Retried for up to 10 s.

${common}`,
  clear: `usage: tally clear NAMESPACE COUNTER [options]

Resets a counter to 0 (ClearCount), with an idempotency token like add.

${common}`,
  namespaces: `usage: tally namespaces [options]

Lists the namespaces the runtime serves: type, readiness, accept limit; and the configuration documents it could not
load.

${common}`,
} as const;

export type CounterCommand = keyof typeof help;

const commonOptions = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  'timeout-ms': { type: 'string' },
  'hedge-ms': { type: 'string' },
  'token-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

const addOptions = {
  ...commonOptions,
  get: { type: 'boolean' },
  token: { type: 'string' },
  'generation-time': { type: 'string' },
} satisfies ParseArgsConfig['options'];

function usage(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_PARSE_ARGS_USAGE' });
}

/** Runs `tally add|get|clear|namespaces`; resolves to the exit code. */
export async function runCounterCommand(command: CounterCommand, argv: string[]): Promise<number> {
  // A negative delta would read as an option: take it out as the positional it is.
  const negative = argv.filter((a) => /^-\d+$/.test(a));
  const { values, positionals } = parseArgs({
    args: argv.filter((a) => !negative.includes(a)),
    options: command === 'add' ? addOptions : commonOptions,
    allowPositionals: true,
    strict: true,
  });
  const opts = values as Partial<Record<keyof typeof addOptions, string | boolean>>;
  if (opts.help) {
    process.stdout.write(`${help[command]}\n`);
    return EXIT.ok;
  }
  const args = [...positionals, ...negative];
  const wanted = { add: [2, 3], get: [2, 2], clear: [2, 2], namespaces: [0, 0] }[command];
  if (args.length < wanted[0]! || args.length > wanted[1]!)
    throw usage(`wrong number of arguments; ${help[command].split('\n')[0]!}`);

  const url = stringOption(opts.url as string | undefined, 'TALLY_URL');
  if (!url) throw usage('--url URL (or TALLY_URL) is required');
  const tokenFile = stringOption(opts['token-file'] as string | undefined, 'TALLY_TOKEN_FILE');
  const bearer = tokenFile ? { file: tokenFile } : process.env.TALLY_TOKEN || undefined;
  let client: TallyClient;
  try {
    const ms = (flag: keyof typeof commonOptions, env: string, fallback: number) =>
      intOption(opts[flag] as string | undefined, env, fallback, `--${flag}`, 600_000);
    const hedgeMs = ms('hedge-ms', 'TALLY_HEDGE_MS', 0);
    client = new TallyClient({
      url,
      attemptTimeoutMs: ms('timeout-ms', 'TALLY_TIMEOUT_MS', 2000),
      ...(hedgeMs > 0 ? { hedgeAfterMs: hedgeMs } : {}),
      ...(bearer !== undefined ? { bearerToken: bearer } : {}),
    });
  } catch (err) {
    throw usage(err instanceof Error ? err.message : String(err));
  }
  const json = opts.json === true;
  try {
    const out = await call(client, command, args, opts);
    process.stdout.write(`${json ? JSON.stringify(out.answer) : out.text}\n`);
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof TallyError)) throw err;
    const field = err instanceof TallyApiError ? err.field : undefined;
    if (json) {
      const error = { code: err.code, message: err.message, ...(field ? { field } : {}) };
      const token = err.idempotencyToken ? { idempotency_token: err.idempotencyToken } : {};
      process.stdout.write(`${JSON.stringify({ error: { ...error, ...token } })}\n`);
    }
    process.stderr.write(`tally ${command}: ${err.message}\n`);
    return exitCodeOf(err);
  }
}

export function exitCodeOf(err: TallyError): number {
  if (
    err instanceof UnavailableError ||
    err instanceof RequestTimeoutError ||
    err instanceof ConnectionError ||
    err instanceof AcceptWindowExceededError ||
    err instanceof RetriesExhaustedError
  )
    return EXIT.unavailable;
  if (err instanceof TallyApiError && err.status >= 400 && err.status < 500) return EXIT.refused;
  return EXIT.failure;
}

async function call(
  client: TallyClient,
  command: CounterCommand,
  args: string[],
  opts: Partial<Record<keyof typeof addOptions, string | boolean>>,
): Promise<{ answer: unknown; text: string }> {
  const [namespace = '', counter_name = ''] = args;
  const name = `${namespace}/${counter_name}`;
  switch (command) {
    case 'add': {
      const delta = args[2] === undefined ? 1 : Number(args[2]);
      if (!Number.isSafeInteger(delta)) throw usage(`DELTA must be an integer, got "${args[2]}"`);
      const token = givenToken(opts.token as string | undefined, opts['generation-time'] as string | undefined);
      const request = { namespace, counter_name, delta, ...(token ? { idempotency_token: token } : {}) };
      if (opts.get) {
        const answer = await client.addAndGetCount(request);
        return { answer, text: `${countText(name, answer)} after adding ${delta}` };
      }
      const answer = await client.addCount(request);
      const t = answer.idempotency_token;
      return { answer, text: `added ${delta} to ${name} (token ${t.token}, generated ${t.generation_time})` };
    }
    case 'get': {
      const answer = await client.getCount({ namespace, counter_name });
      return { answer, text: countText(name, answer) };
    }
    case 'clear': {
      const answer = await client.clearCount({ namespace, counter_name });
      return { answer, text: `cleared ${name}` };
    }
    case 'namespaces': {
      const answer = await client.listNamespaces();
      return { answer, text: namespacesText(answer) };
    }
  }
}

function givenToken(token: string | undefined, generationTime: string | undefined): IdempotencyToken | undefined {
  if (token === undefined && generationTime === undefined) return undefined;
  if (token === undefined || generationTime === undefined)
    throw usage('--token and --generation-time go together: a token is identified by both');
  return { token, generation_time: generationTime };
}

function countText(name: string, r: CountResponse): string {
  return `${name} = ${r.count}${r.as_of ? ` (as of ${r.as_of})` : ''}`;
}

function namespacesText(list: NamespaceList): string {
  const rows = [
    ['NAME', 'TYPE', 'READY', 'ACCEPT-LIMIT'],
    ...list.namespaces.map((n) => [
      n.name,
      n.counter_type,
      n.ready ? 'yes' : `no: ${n.reason ?? 'unknown'}`,
      `${n.config.eventStorage.acceptLimitSeconds}s`,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  return [...lines, ...list.errors.map((e) => `error: ${e}`)].join('\n');
}
