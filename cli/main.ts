#!/usr/bin/env node
import { runOperator } from './operator';
import { runRollup } from './rollup';
import { runServe } from './serve';
import { messageOf } from '../lib/errors';

const usage = `tally — distributed counters on Cassandra and Memcached

usage: tally <command> [options]

commands:
  serve     serve the counter HTTP API
  rollup    roll up every counter whose checkpoint is behind (the sweeper the operator's CronJob runs)
  operator  run the Kubernetes operator that reconciles CounterNamespace resources

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
