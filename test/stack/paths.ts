import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The repository root: the nearest folder above this file holding Tally's package.json (works from src and dist). */
export function repoRoot(start: string = __dirname): string {
  let dir = start;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tally') {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`could not find Tally's package.json above ${start}`);
    dir = parent;
  }
}

/** Local state of the stack (pids, logs, data, env file): git-ignored, inside the checkout. */
export function stateDir(): string {
  return process.env.TALLY_STATE_DIR ?? path.join(repoRoot(), '.tally');
}

/** Downloads and builds, shared by every checkout and kept across runs, keyed by version. */
export function cacheDir(): string {
  return process.env.TALLY_CACHE ?? path.join(os.homedir(), '.cache', 'tally');
}

export function stackScript(name: string): string {
  return path.join(repoRoot(), 'test', 'stack', name);
}

export function ensureDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
