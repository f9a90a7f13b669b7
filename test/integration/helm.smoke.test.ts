import { execFileSync } from 'node:child_process';
import { versions } from '../stack/versions';
import { requireEnv } from '../support/env';

describe('helm (local stack)', () => {
  it('runs and reports the version the stack built', () => {
    const out = execFileSync(requireEnv('TALLY_HELM'), ['version', '--short'], { encoding: 'utf8' });
    expect(out.trim()).toMatch(new RegExp(`^${versions().HELM_VERSION.replace(/\./g, '\\.')}\\b`));
  });
});
