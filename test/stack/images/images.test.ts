import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../paths';
import {
  PRODUCT_DIRS,
  PRODUCT_FILES,
  TEST_ONLY_FILES,
  imageHash,
  imageVersions,
  imagesToBuild,
  isProductSource,
  planImages,
  productContextFiles,
  type ImageSpec,
  type PlannedImage,
} from './images';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-images-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A spec whose Dockerfile and inputs are plain values the test changes. */
function spec(name: string, over: Partial<ImageSpec> & { inputs?: () => { key: string; content: string }[] } = {}) {
  const dockerfile = path.join(dir, `${name}.Dockerfile`);
  if (!fs.existsSync(dockerfile)) fs.writeFileSync(dockerfile, `FROM scratch\n# ${name}\n`);
  return {
    name,
    dockerfile,
    buildArgs: {},
    archive: true,
    inputs: () => [{ key: 'a', content: 'one' }],
    stage: () => Promise.resolve(),
    ...over,
  } satisfies ImageSpec;
}

describe('imageHash', () => {
  it('is stable for the same inputs, in any order', () => {
    const two = () => [
      { key: 'a', content: 'one' },
      { key: 'b', content: 'two' },
    ];
    const h = imageHash(spec('x', { inputs: two }), 'base1');
    expect(h).toMatch(/^[0-9a-f]{16}$/);
    expect(imageHash(spec('x', { inputs: two }), 'base1')).toBe(h);
    expect(imageHash(spec('x', { inputs: () => two().reverse() }), 'base1')).toBe(h);
  });

  it('changes with the Dockerfile, the target, a build argument, an input, and the base', () => {
    const s = spec('changing');
    const h = imageHash(s, 'base1');
    expect(imageHash({ ...s, target: 'runtime' }, 'base1')).not.toBe(h);
    expect(imageHash({ ...s, buildArgs: { VERSION: '0.2.0' } }, 'base1')).not.toBe(h);
    expect(imageHash({ ...s, inputs: () => [{ key: 'a', content: 'One' }] }, 'base1')).not.toBe(h);
    expect(imageHash({ ...s, inputs: () => [{ key: 'A', content: 'one' }] }, 'base1')).not.toBe(h);
    expect(imageHash(s, 'base2')).not.toBe(h);
    expect(imageHash(s, undefined)).not.toBe(h);
    fs.appendFileSync(s.dockerfile, 'USER 10001\n');
    expect(imageHash(s, 'base1')).not.toBe(h);
  });

  it('does not confuse where one field ends and the next begins', () => {
    const s = spec('x');
    const a = imageHash({ ...s, inputs: () => [{ key: 'ab', content: 'c' }] }, 'b');
    const b = imageHash({ ...s, inputs: () => [{ key: 'a', content: 'bc' }] }, 'b');
    expect(a).not.toBe(b);
  });
});

describe('planImages', () => {
  const specs = (rootfs = 'r1', source = 's1') => [
    spec('debian', { archive: false, inputs: () => [{ key: 'rootfs', content: rootfs }] }),
    spec('node', { archive: false, base: { image: 'debian', arg: 'DEBIAN_IMAGE' } }),
    spec('app', { base: { image: 'node', arg: 'NODE_IMAGE' }, inputs: () => [{ key: 'src', content: source }] }),
    spec('cache', { base: { image: 'debian', arg: 'DEBIAN_IMAGE' } }),
  ];

  it('names each image tally.local/<name>:<hash> and its archive <name>-<hash>.tar, bases first', () => {
    const planned = planImages(specs(), '/cache/images');
    expect(planned.map((p) => p.spec.name)).toEqual(['debian', 'node', 'app', 'cache']);
    const app = planned.find((p) => p.spec.name === 'app')!;
    expect(app.ref).toBe(`tally.local/app:${app.hash}`);
    expect(app.tar).toBe(`/cache/images/app-${app.hash}.tar`);
    expect(planned.find((p) => p.spec.name === 'node')!.tar).toBeUndefined();
  });

  it("a base's change renames every image built on it; a source change only its own image", () => {
    const hashes = (planned: PlannedImage[]) => Object.fromEntries(planned.map((p) => [p.spec.name, p.hash]));
    const before = hashes(planImages(specs()));
    const newRootfs = hashes(planImages(specs('r2')));
    for (const name of ['debian', 'node', 'app', 'cache']) expect(newRootfs[name]).not.toBe(before[name]);
    const newSource = hashes(planImages(specs('r1', 's2')));
    expect(newSource).toEqual({ ...before, app: newSource.app });
    expect(newSource.app).not.toBe(before.app);
  });

  it('refuses a base that does not exist', () => {
    expect(() => planImages([spec('app', { base: { image: 'nope', arg: 'X' } })])).toThrow(/no image nope/);
  });
});

describe('imagesToBuild: the rebuild decision', () => {
  const planned = planImages(
    [
      spec('debian', { archive: false }),
      spec('node', { archive: false, base: { image: 'debian', arg: 'DEBIAN_IMAGE' } }),
      spec('app', { base: { image: 'node', arg: 'NODE_IMAGE' } }),
      spec('cache', { base: { image: 'debian', arg: 'DEBIAN_IMAGE' } }),
    ],
    '/c',
  );
  const names = (built: PlannedImage[]) => built.map((p) => p.spec.name);
  const ref = (name: string) => planned.find((p) => p.spec.name === name)!.ref;
  const tar = (name: string) => planned.find((p) => p.spec.name === name)!.tar!;
  const decide = (tars: string[], images: string[]) =>
    names(
      imagesToBuild(planned, {
        tar: (f) => tars.map(tar).includes(f),
        image: (r) => images.map(ref).includes(r),
      }),
    );

  it('builds nothing when every archive exists, whatever the storage holds', () => {
    expect(decide(['app', 'cache'], [])).toEqual([]);
  });

  it('builds a missing archive on the base in storage', () => {
    expect(decide(['cache'], ['debian', 'node'])).toEqual(['app']);
  });

  it('rebuilds the bases missing from storage first, and only those the missing archives need', () => {
    expect(decide(['cache'], ['debian'])).toEqual(['node', 'app']);
    expect(decide(['cache'], [])).toEqual(['debian', 'node', 'app']);
    expect(decide(['app'], [])).toEqual(['debian', 'cache']);
    expect(decide([], [])).toEqual(['debian', 'node', 'app', 'cache']);
  });
});

describe('the product build context', () => {
  it('holds the product sources and manifests, no tests and no test fakes', () => {
    const files = productContextFiles();
    expect(files).toEqual(expect.arrayContaining([...PRODUCT_FILES, 'cli/main.ts', 'runtime/server.ts']));
    expect(files.filter((f) => f.endsWith('.test.ts') || f.startsWith('test/'))).toEqual([]);
    for (const fake of TEST_ONLY_FILES) expect(files).not.toContain(fake);
    expect(isProductSource('runtime/server.ts')).toBe(true);
    expect(isProductSource('runtime/server.test.ts')).toBe(false);
    expect(isProductSource('runtime/Dockerfile')).toBe(false);
  });

  it('is what .dockerignore lets into a `docker build .` of the repository', () => {
    const lines = fs
      .readFileSync(path.join(repoRoot(), '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('*');
    const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    expect(allowed.sort()).toEqual([...PRODUCT_FILES, ...PRODUCT_DIRS].sort());
    expect(lines).toEqual(expect.arrayContaining(['**/*.test.ts', ...TEST_ONLY_FILES]));
  });

  it('is what the Dockerfile copies', () => {
    const dockerfile = fs.readFileSync(path.join(repoRoot(), 'Dockerfile'), 'utf8');
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect([...new Set(copied)].sort()).toEqual([...PRODUCT_FILES, ...PRODUCT_DIRS].sort());
  });
});

describe('imageVersions', () => {
  it('reads the pinned versions, and says which is missing', () => {
    expect(imageVersions('DEBIAN_SUITE=bookworm\nNODE_VERSION=24.1.0 # x\nNPM_VERSION=11.0.0\n')).toEqual({
      DEBIAN_SUITE: 'bookworm',
      NODE_VERSION: '24.1.0',
      NPM_VERSION: '11.0.0',
    });
    expect(() => imageVersions('NODE_VERSION=24.1.0')).toThrow(/DEBIAN_SUITE is missing/);
  });

  it('pins Node.js 24 in versions.sh', () => {
    expect(imageVersions().NODE_VERSION).toMatch(/^24\.\d+\.\d+$/);
  });
});
