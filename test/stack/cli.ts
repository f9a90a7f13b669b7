import { down, envPath, status, up } from './stack';
import { StackError } from './log';
import { ensureImages } from './images/images';

const usage = `usage: node dist/test/stack/cli.js up|down|status|images
  up      install what is missing, start the local stack in the background, write .tally/env
  down    stop everything up started (by recorded pid)
  status  one line per component: running or not, address, version
  images  build the local cluster's images where their inputs changed; one line each: reference and archive`;

async function main(argv: string[]): Promise<number> {
  switch (argv[0]) {
    case 'up': {
      await up();
      process.stderr.write(`[stack] up. Load the environment with: . ${envPath()}\n`);
      return 0;
    }
    case 'down':
      await down();
      return 0;
    case 'status': {
      const lines = await status();
      for (const l of lines) {
        const state = l.running ? 'running' : 'stopped';
        const owner = l.managed ? '' : ' (existing service)';
        const detail = l.detail && !l.running ? `  ${l.detail}` : '';
        process.stdout.write(
          `${l.name.padEnd(11)} ${state.padEnd(8)} ${l.address.padEnd(28)} ${l.version}${owner}${detail}\n`,
        );
      }
      return lines.every((l) => l.running) ? 0 : 3;
    }
    case 'images': {
      for (const image of await ensureImages()) process.stdout.write(`${image.ref} ${image.tar}\n`);
      return 0;
    }
    default:
      process.stderr.write(`${usage}\n`);
      return argv[0] === '--help' || argv[0] === '-h' ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof StackError || err instanceof Error ? err.message : String(err);
    process.stderr.write(`[stack] failed: ${message}\n`);
    process.exit(1);
  },
);
