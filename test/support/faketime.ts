import { execFileSync } from 'node:child_process';
import { runCommand } from '../stack/processes';
import { stackScript } from '../stack/paths';

/**
 * The environment that runs a process with its wall clock shifted by `offset` (libfaketime's syntax, e.g. "+3s",
 * "-2.5s"), from Debian's libfaketime, installed on first use. The monotonic clock is left alone: timers and
 * timeouts behave, only Date.now() and the time the process stamps are off, as on a host whose clock is wrong.
 */
export async function fakeTimeEnv(offset: string): Promise<Record<string, string>> {
  await runCommand('bash', [stackScript('install-apt.sh'), 'faketime', 'faketime']);
  const lib = execFileSync('dpkg', ['-L', 'libfaketime'], { encoding: 'utf8' })
    .split('\n')
    .find((p) => p.endsWith('/libfaketime.so.1'));
  if (!lib) throw new Error('libfaketime.so.1 not found in the libfaketime package (dpkg -L libfaketime)');
  return { LD_PRELOAD: lib, FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}
