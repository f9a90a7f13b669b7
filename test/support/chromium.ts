import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inflateSync } from 'node:zlib';
import { ensurePinnedPackage } from './debian';

/**
 * Debian's chromium at the pinned version, installed on first use; another installed version is refused (the
 * screenshot and the test would then depend on whatever the machine has).
 */
export function ensureChromium(): Promise<void> {
  return ensurePinnedPackage({
    command: 'chromium',
    package: 'chromium',
    companions: ['chromium-common'],
    pin: 'CHROMIUM_VERSION',
  });
}

/**
 * Flags that keep chromium off the network and quiet: no first-run, sync, component or safe-browsing updates,
 * background fetches or crash reports; every host name resolves to nothing and every non-loopback connection goes to
 * a proxy that is not there (chromium never proxies loopback), so only http://127.0.0.1 can load. (Checked: an
 * image on the host's own non-loopback address is fetched without these flags and not with them.)
 */
const OFFLINE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-extensions',
  '--disable-default-apps',
  '--disable-breakpad',
  '--disable-domain-reliability',
  '--disable-client-side-phishing-detection',
  '--no-pings',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
  '--proxy-server=127.0.0.1:9',
  '--hide-scrollbars',
  '--force-device-scale-factor=1',
];

export interface LoadOptions {
  /** Also write a PNG of the page here. */
  screenshot?: string;
  width?: number;
  height?: number;
  timeoutMs?: number;
}

/** Runs chromium once with a fresh profile; answers its stdout. The process group is killed on timeout. */
function runChromium(args: string[], timeoutMs: number): Promise<string> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-chromium-'));
  return new Promise<string>((resolve, reject) => {
    const child = spawn('chromium', [...OFFLINE_FLAGS, `--user-data-dir=${profile}`, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
      reject(new Error(`chromium ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${err.slice(-2000)}`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`chromium ${args.join(' ')} exited with ${code}:\n${err.slice(-2000)}`));
    });
  }).finally(() => fs.rmSync(profile, { recursive: true, force: true }));
}

/**
 * Loads a page of a local runtime in headless chromium and answers the DOM as rendered (--dump-dom); with
 * `screenshot`, also writes a PNG of the viewport. Only loopback addresses are accepted.
 */
export async function loadPage(url: string, opts: LoadOptions = {}): Promise<string> {
  if (!/^http:\/\/127\.0\.0\.1:\d+\//.test(url)) throw new Error(`only http://127.0.0.1:<port>/ is loaded, not ${url}`);
  await ensureChromium();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const dom = await runChromium(['--dump-dom', url], timeoutMs);
  // A page that fails to load still exits 0, with nothing on stdout.
  if (!dom.trim()) throw new Error(`chromium loaded nothing from ${url}`);
  if (opts.screenshot) {
    const size = `--window-size=${opts.width ?? 1200},${opts.height ?? 800}`;
    await runChromium([size, `--screenshot=${path.resolve(opts.screenshot)}`, url], timeoutMs);
  }
  return dom;
}

export interface PngSummary {
  width: number;
  height: number;
  /** Distinct colours among the pixels: a blank or one-colour image has 1. */
  colors: number;
}

/** Decodes an 8-bit RGB or RGBA PNG (what chromium writes) far enough to tell a picture from a blank. */
export function summarizePng(png: Buffer): PngSummary {
  if (!png.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]))) throw new Error('not a PNG');
  let offset = 8;
  let header: Buffer | undefined;
  const data: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const body = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') header = body;
    if (type === 'IDAT') data.push(body);
    offset += 12 + length;
  }
  if (!header) throw new Error('PNG without IHDR');
  const width = header.readUInt32BE(0);
  const height = header.readUInt32BE(4);
  const [depth, colorType, , , interlace] = [header[8], header[9], header[10], header[11], header[12]];
  const channels = colorType === 6 ? 4 : colorType === 2 ? 3 : 0;
  if (depth !== 8 || channels === 0 || interlace !== 0)
    throw new Error(`unsupported PNG (bit depth ${depth}, colour type ${colorType}, interlace ${interlace})`);
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  let previous = Buffer.alloc(stride);
  const colors = new Set<string>();
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    // Undo the scanline filter (PNG spec, section 9).
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? line[i - channels]! : 0;
      const b = previous[i]!;
      const c = i >= channels ? previous[i - channels]! : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c;
      const add = [0, a, b, (a + b) >> 1, paeth][filter] ?? 0;
      line[i] = (line[i]! + add) & 0xff;
    }
    for (let x = 0; x < stride; x += channels) colors.add(line.toString('hex', x, x + channels));
    previous = line;
  }
  return { width, height, colors: colors.size };
}
