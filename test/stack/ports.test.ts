import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { candidateRange, ephemeralRange, freePort, portOr } from './ports';

describe('candidateRange', () => {
  it('chooses the ports below the ephemeral range when they are the larger stretch', () => {
    expect(candidateRange([32768, 60999])).toEqual([10000, 32767]);
  });

  it('chooses the ports above it when the range starts low', () => {
    expect(candidateRange([1024, 40000])).toEqual([40001, 65535]);
  });

  it('gives up (the kernel then picks) when the range leaves almost nothing outside it', () => {
    expect(candidateRange([1024, 65000])).toBeUndefined();
    expect(candidateRange(undefined)).toBeUndefined();
  });
});

describe('ephemeralRange', () => {
  it('reads the kernel setting, and answers undefined for a missing or garbled file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-ports-'));
    try {
      fs.writeFileSync(path.join(dir, 'range'), '32768\t60999\n');
      expect(ephemeralRange(path.join(dir, 'range'))).toEqual([32768, 60999]);
      fs.writeFileSync(path.join(dir, 'garbled'), 'not numbers\n');
      expect(ephemeralRange(path.join(dir, 'garbled'))).toBeUndefined();
      expect(ephemeralRange(path.join(dir, 'missing'))).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('freePort', () => {
  it('hands out distinct ports outside the ephemeral range that can then be bound', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).toBe(ports.length);
    // The stack runs on Linux, where the kernel publishes its range.
    const range = candidateRange(ephemeralRange())!;
    expect(range).toBeDefined();
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(range[0]);
      expect(port).toBeLessThanOrEqual(range[1]);
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
      await new Promise((r) => server.close(r));
    }
  });
});

describe('portOr', () => {
  it('takes the previous port again once it is free, waiting while it is still held', async () => {
    const port = await freePort();
    const holder = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => holder.once('listening', r));
    setTimeout(() => holder.close(), 500);
    expect(await portOr(port, 5000)).toBe(port);
  });

  it('takes another port when the previous one stays held', async () => {
    const port = await freePort();
    const holder = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => holder.once('listening', r));
    try {
      const other = await portOr(port, 300);
      expect(other).not.toBe(port);
    } finally {
      holder.close();
    }
  });
});
