import * as fs from 'node:fs';
import * as path from 'node:path';
import { CRD_FILE, counterNamespaceCrdYaml } from './crd';

/** The repository root: the nearest directory above this file (in operator/ or dist/operator/) with package.json. */
export function repoRoot(from = __dirname): string {
  let dir = from;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
  return dir;
}

/** The chart ships the same file: helm installs crds/ on first install. */
export const CHART_CRD_FILE = `helm/tally/${CRD_FILE}`;

// `npm run gen:crd`: regenerates crds/ and the chart's copy from the schemas.
if (require.main === module) {
  for (const relative of [CRD_FILE, CHART_CRD_FILE]) {
    const file = path.join(repoRoot(), relative);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, counterNamespaceCrdYaml());
    console.log(`wrote ${path.relative(process.cwd(), file) || file}`);
  }
}
