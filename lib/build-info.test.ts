import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageVersion } from './build-info';

describe('packageVersion', () => {
  it("is the version in the nearest package.json above the given directory, as the images' /app holds it", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'build-info-'));
    try {
      fs.mkdirSync(path.join(root, 'dist', 'lib'), { recursive: true });
      fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'x', version: '1.2.3' }));
      expect(packageVersion(path.join(root, 'dist', 'lib'))).toBe('1.2.3');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("is the repository's version from here", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    expect(packageVersion()).toBe(pkg.version);
  });
});
