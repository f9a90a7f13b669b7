#!/usr/bin/env node
import { runCounterCommand, type CounterCommand } from './counter-commands';
import { runOperator } from './operator';
import { runRollup } from './rollup';
import { runServe } from './serve';
import { messageOf } from '../lib/errors';

const usage = `tally — distributed counters on Cassandra and Memcached

usage: tally <command> [options]

commands:
  serve       serve the counter HTTP API
  rollup      roll up every counter whose checkpoint is behind (the sweeper the operator's CronJob runs)
  operator    run the Kubernetes operator that reconciles CounterNamespace resources

  add         add to a counter (AddCount; --get: AddAndGetCount)     these four call the runtime at
  get         print a counter's count (GetCount)                      TALLY_URL or --url, with the
  clear       reset a counter to 0 (ClearCount)                       TypeScript client (docs/cli.md)
  namespaces  list the namespaces the runtime serves

Run "tally <command> --help" for a command's options.`;

/** A mistake in how the command was called: printed with the usage hint, exit code 2. */
export class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return runServe(rest);
    case 'rollup':
      return runRollup(rest);
    case 'operator':
      return runOperator(rest);
    case 'add':
    case 'get':
    case 'clear':
    case 'namespaces':
      return runCounterCommand(command satisfies CounterCommand, rest);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(`${usage}\n`);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const code = (err as { code?: unknown } | null)?.code;
      const usageError = err instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'));
      process.stderr.write(`tally: ${messageOf(err)}${usageError ? '\n(see tally --help)' : ''}\n`);
      process.exitCode = usageError ? 2 : 1;
    },
  );
}
