import { spawn } from 'node:child_process';
import { ensurePinnedPackage } from '../support/debian';
import { freePort, isListening } from '../stack/ports';
import { waitFor } from '../stack/wait';

/**
 * Debian's Redis at the version test/stack/versions.sh pins, started for the bench on loopback: no persistence (the
 * peer it serves is an in-memory counter, as BestEffort is), protected mode on, gone when stopped.
 */
export async function startRedis(): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  await ensurePinnedPackage({
    command: 'redis-server',
    package: 'redis-server',
    companions: ['redis-tools'],
    pin: 'REDIS_VERSION',
  });
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'],
    { stdio: 'ignore' },
  );
  await waitFor(`redis-server to listen on 127.0.0.1:${port}`, () => isListening('127.0.0.1', port), {
    timeoutMs: 10_000,
    intervalMs: 100,
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
