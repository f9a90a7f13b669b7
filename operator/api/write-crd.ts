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

// `npm run gen:crd`: regenerates crds/ from the schemas.
if (require.main === module) {
  const file = path.join(repoRoot(), CRD_FILE);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, counterNamespaceCrdYaml());
  console.log(`wrote ${path.relative(process.cwd(), file) || file}`);
}
