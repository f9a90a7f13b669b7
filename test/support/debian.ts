import { execFileSync } from 'node:child_process';
import { runCommand } from '../stack/processes';
import { stackScript } from '../stack/paths';

/** A Debian package a test needs, at the version test/stack/versions.sh pins in `pin` (e.g. PROMETHEUS_VERSION). */
export interface PinnedPackage {
  /** The command whose presence means "installed" (install-apt.sh skips at once when it is on PATH). */
  command: string;
  /** The package whose version is pinned and checked. */
  package: string;
  /** Packages installed at the same version beside it (e.g. chromium-common). */
  companions?: string[];
  pin: string;
}

function pinnedVersion(pin: string): string {
  return execFileSync('bash', ['-c', `. "$0"; printf %s "$${pin}"`, stackScript('versions.sh')], { encoding: 'utf8' });
}

const installs = new Map<string, Promise<void>>();

/**
 * Installs the package at its pinned version on first use (install-apt.sh; services it ships are not started). A
 * version already installed that is not the pin is refused rather than used: the tests would then depend on whatever
 * the machine has.
 */
export function ensurePinnedPackage(p: PinnedPackage): Promise<void> {
  let install = installs.get(p.package);
  if (!install) {
    install = (async () => {
      const version = pinnedVersion(p.pin);
      const specs = [p.package, ...(p.companions ?? [])].map((name) => `${name}=${version}`);
      await runCommand('bash', [stackScript('install-apt.sh'), p.command, ...specs]);
      const have = execFileSync('dpkg-query', ['-W', '-f=${Version}', p.package], { encoding: 'utf8' });
      if (have !== version) {
        throw new Error(
          `${p.package} ${have} is installed, test/stack/versions.sh pins ${version} (${p.pin}): ` +
            `apt-get install ${specs.join(' ')}, or change the pin`,
        );
      }
    })();
    installs.set(p.package, install);
  }
  return install;
}
