import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Component, Endpoint, Probe } from '../component';
import { cacheDir, stackScript } from '../paths';
import { runCommand } from '../processes';
import { versions } from '../versions';

const execFileAsync = promisify(execFile);

function helmPath(): string {
  return path.join(cacheDir(), 'helm', versions().HELM_VERSION, 'bin', 'helm');
}

/** helm is a command, not a service: "starting" it means making sure the binary is built and naming it in the env. */
export const helm: Component = {
  name: 'helm',
  phase: 0,
  externalVars: ['TALLY_HELM'],
  processes: [],

  fromEnvironment(env) {
    return env.TALLY_HELM ? { address: env.TALLY_HELM, env: { TALLY_HELM: env.TALLY_HELM } } : undefined;
  },

  async install() {
    await runCommand('bash', [stackScript('build-go-tools.sh'), 'helm']);
  },

  start(): Promise<Endpoint> {
    const bin = helmPath();
    if (!fs.existsSync(bin)) return Promise.reject(new Error(`helm: ${bin} is missing after install`));
    return Promise.resolve({ address: bin, env: { TALLY_HELM: bin } });
  },

  async probe(endpoint): Promise<Probe> {
    const { stdout } = await execFileAsync(endpoint.address, ['version', '--short'], { timeout: 10000 });
    return { ok: true, version: stdout.trim() };
  },
};
