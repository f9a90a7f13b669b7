import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot, stackScript } from '../stack/paths';
import { runCommand } from '../stack/processes';
import * as os from 'node:os';
import { ensureImages, imageVersions, productContextFiles, type BuiltImage } from '../stack/images/images';

const execFileAsync = promisify(execFile);

/**
 * The images the local cluster runs, built from the project's Dockerfiles (test/stack/images; cached by the hash of
 * their inputs, so this costs seconds once built) and checked from their archives, the files the node imports: each
 * archive becomes a buildah container that runs, with no network, what the chart and the operator's CronJob run.
 */
describe('the images, from their archives', () => {
  let built: BuiltImage[] = [];
  const containers: string[] = [];

  beforeAll(async () => {
    await runCommand('bash', [stackScript('install-apt.sh'), 'buildah', 'buildah']);
    built = await ensureImages();
  }, 20 * 60_000);

  afterAll(async () => {
    for (const c of containers) await execFileAsync('buildah', ['rm', c]).catch(() => undefined);
  });

  interface ImageConfig {
    User?: string;
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    Env?: string[];
    ExposedPorts?: Record<string, unknown>;
    Labels?: Record<string, string>;
  }

  /** A working container from the image's docker-archive, and the image's configuration. */
  async function fromArchive(name: string): Promise<{ ctr: string; config: ImageConfig }> {
    const image = built.find((b) => b.name === name);
    if (!image) throw new Error(`no image ${name} among ${built.map((b) => b.name).join(', ')}`);
    const { stdout } = await execFileAsync('buildah', [
      'from',
      '--pull-never',
      '--quiet',
      `docker-archive:${image.tar}`,
    ]);
    const ctr = stdout.trim();
    containers.push(ctr);
    const inspect = JSON.parse((await execFileAsync('buildah', ['inspect', ctr], { maxBuffer: 16 << 20 })).stdout) as {
      OCIv1: { config: ImageConfig };
    };
    return { ctr, config: inspect.OCIv1.config };
  }

  /** `sh -c script` in the container, as the image's user, with no network. */
  async function run(ctr: string, script: string): Promise<string> {
    const { stdout } = await execFileAsync('buildah', ['run', '--network', 'none', ctr, '--', 'sh', '-c', script], {
      maxBuffer: 16 << 20,
    });
    return stdout;
  }

  /** The command of a chart template's container: `command: ["node", "dist/cli/main.js", ...]`. */
  function chartCommand(template: string): string[] {
    const text = fs.readFileSync(path.join(repoRoot(), 'helm', 'tally', 'templates', template), 'utf8');
    return JSON.parse(/^\s*command:\s*(\[.*\])\s*$/m.exec(text)![1]!) as string[];
  }

  const version = (JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string })
    .version;

  it('are named tally.local/<name>:<hash>, the archive <name>-<hash>.tar', () => {
    expect(built.map((b) => b.name).sort()).toEqual(['memcached', 'tally-operator', 'tally-runtime']);
    for (const b of built) {
      expect(b.ref).toMatch(new RegExp(`^tally\\.local/${b.name}:[0-9a-f]{16}$`));
      expect(path.basename(b.tar)).toBe(`${b.name}-${b.ref.split(':')[1]}.tar`);
    }
  });

  it('the runtime runs Node.js 24 as user 10001, holds no tests or dev dependencies, and answers --help', async () => {
    const { ctr, config } = await fromArchive('tally-runtime');
    expect(config.User).toBe('10001:10001');
    expect(config.WorkingDir).toBe('/app');
    expect(config.Entrypoint).toEqual(['node', 'dist/cli/main.js']);
    expect(config.Cmd).toEqual(['serve', '--configmaps']);
    expect(Object.keys(config.ExposedPorts ?? {})).toEqual(['8080/tcp']);
    expect(config.Env).toContain('NODE_ENV=production');
    expect(config.Labels).toMatchObject({
      'org.opencontainers.image.title': 'tally-runtime',
      'org.opencontainers.image.version': version,
      'org.opencontainers.image.licenses': 'Apache-2.0',
    });
    expect(config.Labels?.['org.opencontainers.image.description']).toBeTruthy();

    const out = await run(
      ctr,
      [
        'echo "node $(node --version)"',
        'echo "uid $(id -u) gid $(id -g)"',
        'test -e dist/test && echo "dist/test present" || echo "dist/test absent"',
        'echo "app: $(ls | tr "\\n" " ")"',
        'echo "tests: $(find dist -name "*.test.js" -o -name fakes.js -o -name memory-store.js -o -name "*.ts" | wc -l)"',
        'echo "dev dependencies: $(ls -d node_modules/typescript node_modules/jest node_modules/eslint 2>/dev/null | wc -l)"',
        // What user 10001 may write on the root filesystem: only the world-writable temp directories.
        'echo "writable: $(find / -xdev -writable 2>/dev/null | sort | tr "\\n" " ")"',
        'node dist/cli/main.js --help',
      ].join('; '),
    );
    expect(out).toContain(`node v${imageVersions().NODE_VERSION}\n`);
    expect(out).toMatch(/^node v24\./m);
    expect(out).toContain('uid 10001 gid 10001\n');
    expect(out).toContain('dist/test absent\n');
    expect(out).toContain('app: dist node_modules package.json \n');
    expect(out).toContain('tests: 0\n');
    expect(out).toContain('dev dependencies: 0\n');
    const writable = /^writable: (.*)$/m.exec(out)![1]!.trim().split(' ');
    expect(writable.filter((p) => !['/tmp', '/var/tmp', '/var/lock', '/run/lock'].includes(p))).toEqual([]);
    expect(out).toContain('usage: tally <command>');
  });

  it('the runtime starts with a read-only root filesystem and only /tmp writable, as the chart runs it', async () => {
    // runc directly (buildah run has no read-only root): the image's rootfs, read-only, user 10001, a tmpfs on /tmp
    // (the chart's emptyDir), its own network namespace with nothing in it.
    await runCommand('bash', [stackScript('install-apt.sh'), 'runc', 'runc']);
    const { ctr } = await fromArchive('tally-runtime');
    const rootfs = (await execFileAsync('buildah', ['mount', ctr])).stdout.trim();
    const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-ro-'));
    const id = `tally-images-test-${process.pid}`;
    try {
      await execFileAsync('runc', ['spec', '--bundle', bundle]);
      const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as {
        root: unknown;
        process: Record<string, unknown>;
        mounts: unknown[];
      };
      spec.root = { path: rootfs, readonly: true };
      spec.process.terminal = false;
      spec.process.user = { uid: 10001, gid: 10001 };
      spec.process.cwd = '/app';
      spec.process.env = ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production'];
      spec.process.args = [
        'sh',
        '-c',
        'node dist/cli/main.js --help | head -1; ' +
          'for d in /app /app/dist /etc /var/tmp /tmp; do touch $d/.w 2>/dev/null && echo "$d writable" || echo "$d read-only"; done',
      ];
      spec.mounts.push({
        destination: '/tmp',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'mode=1777'],
      });
      fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
      const { stdout } = await execFileAsync('runc', ['run', '--bundle', bundle, id]);
      expect(stdout).toMatch(/^tally — /);
      expect(stdout).toContain(
        '/app read-only\n/app/dist read-only\n/etc read-only\n/var/tmp read-only\n/tmp writable\n',
      );
    } finally {
      await execFileAsync('runc', ['delete', '--force', id]).catch(() => undefined);
      await execFileAsync('buildah', ['umount', ctr]).catch(() => undefined);
      fs.rmSync(bundle, { recursive: true, force: true });
    }
  });

  it("the runtime's entrypoint is what the chart's Deployment runs and what the rollup CronJob gives arguments to", async () => {
    const { ctr, config } = await fromArchive('tally-runtime');
    const command = chartCommand('runtime-deployment.yaml');
    expect(command.slice(0, 2)).toEqual(config.Entrypoint);
    expect(command.slice(2, 4)).toEqual(config.Cmd);
    // The CronJob gives only args (operator/reconcile/cronjob.ts rollupArgs): `tally rollup ...` via the entrypoint.
    expect(await run(ctr, `${config.Entrypoint!.join(' ')} rollup --help`)).toMatch(/rollup/);
  });

  it('the operator image is the same package with the operator as its default command', async () => {
    const { ctr, config } = await fromArchive('tally-operator');
    expect(config.User).toBe('10001:10001');
    expect(config.Entrypoint).toEqual(['node', 'dist/cli/main.js']);
    expect(config.Cmd).toEqual(['operator']);
    expect(Object.keys(config.ExposedPorts ?? {})).toEqual(['8081/tcp']);
    expect(config.Labels?.['org.opencontainers.image.title']).toBe('tally-operator');
    expect(chartCommand('operator-deployment.yaml')).toEqual([...config.Entrypoint!, ...config.Cmd!]);
    const out = await run(ctr, 'node --version; id -u; node dist/cli/main.js operator --help');
    expect(out).toMatch(/^v24\.\d+\.\d+\n10001\n/);
    expect(out).toMatch(/operator/);
  });

  it('the staged context of the local build is what a `docker build .` of the repository copies (.dockerignore)', async () => {
    // buildah reads .dockerignore as docker does: copy the whole context of the repository root into an empty image.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-context-'));
    const ref = `tally.local/context-check:${process.pid}`;
    try {
      fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /context\n');
      await execFileAsync('buildah', [
        'bud',
        '--network',
        'none',
        '--pull=never',
        '--quiet',
        '-f',
        path.join(dir, 'Dockerfile'),
        '-t',
        ref,
        repoRoot(),
      ]);
      const ctr = (await execFileAsync('buildah', ['from', '--pull-never', '--quiet', ref])).stdout.trim();
      containers.push(ctr);
      const mount = (await execFileAsync('buildah', ['mount', ctr])).stdout.trim();
      const files: string[] = [];
      const walk = (rel: string): void => {
        for (const e of fs.readdirSync(path.join(mount, 'context', rel), { withFileTypes: true })) {
          const child = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) walk(child);
          else files.push(child);
        }
      };
      walk('');
      await execFileAsync('buildah', ['umount', ctr]);
      expect(files.sort()).toEqual(productContextFiles().sort());
    } finally {
      await execFileAsync('buildah', ['rmi', '--force', ref]).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("memcached runs as a non-root user with the chart's arguments and answers", async () => {
    const { ctr, config } = await fromArchive('memcached');
    expect(config.User).toBe('11211:11211');
    expect(config.Entrypoint).toEqual(['memcached']);
    // The chart's args (-m, -c, -p) after the entrypoint; a client in the container (perl's IO::Socket, which the
    // Debian package depends on) sets and gets a key.
    const client = [
      'my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:11211") or die "connect: $!";',
      'print $s "set k 0 0 1\\r\\nv\\r\\nget k\\r\\nversion\\r\\n";',
      'for (1..5) { print scalar <$s> }',
    ].join(' ');
    const out = await run(
      ctr,
      `id -u; memcached -m 64 -c 1024 -p 11211 & pid=$!; ` +
        `for i in $(seq 50); do perl -MIO::Socket::INET -e 'exit !IO::Socket::INET->new(PeerAddr => "127.0.0.1:11211")' && break; sleep 0.1; done; ` +
        `perl -MIO::Socket::INET -e '${client}'; kill $pid`,
    );
    expect(out).toMatch(/^11211\nSTORED\r\nVALUE k 0 1\r\nv\r\nEND\r\nVERSION 1\.6\.\d+\r\n/);
  });
});
