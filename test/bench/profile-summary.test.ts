import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { groupOf, summarize, type CpuProfile } from './profile-summary';

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

describe('profile summary: where the CPU went', () => {
  it('groups frames as a reader asks: Node built-ins, packages, Tally folders, V8', () => {
    expect(groupOf(frame('parserOnHeadersComplete', 'node:_http_common'))).toBe('node:http');
    expect(groupOf(frame('writeHead', 'node:internal/http'))).toBe('node:http');
    expect(groupOf(frame('Readable.push', 'node:internal/streams/readable'))).toBe('node:stream');
    expect(groupOf(frame('handle', 'file:///app/node_modules/express/lib/router/index.js'))).toBe('express');
    expect(groupOf(frame('x', '/app/node_modules/@kubernetes/client-node/dist/api.js'))).toBe(
      '@kubernetes/client-node',
    );
    expect(groupOf(frame('addCount', '/app/dist/runtime/counter/durable.js'))).toBe('tally runtime/counter');
    expect(groupOf(frame('(garbage collector)'))).toBe('(garbage collector)');
    expect(groupOf(frame('writeUtf8String'))).toBe('native writeUtf8String');
  });

  it('adds self time per group and function from the sample deltas, idle apart', () => {
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame('(idle)') },
        { id: 2, callFrame: frame('incr', '/app/node_modules/memjs/lib/memjs/memjs.js', 9) },
        { id: 3, callFrame: frame('emit', 'node:_http_server', 1) },
      ],
      startTime: 0,
      endTime: 0,
      samples: [2, 2, 3, 1, 3],
      // The time a sample covers is the delta recorded with the next one.
      timeDeltas: [0, 1000, 1000, 2000, 5000, 1000],
    };
    const s = summarize(profile);
    expect(s.idleMs).toBe(5);
    expect(s.busyMs).toBe(5);
    expect(s.byGroup).toEqual([
      { name: 'node:http', ms: 3, percent: 60 },
      { name: 'memjs', ms: 2, percent: 40 },
    ]);
    expect(s.byFunction.map((f) => [f.name, f.ms])).toEqual([
      ['emit node:_http_server:2 [node:http]', 3],
      ['incr memjs.js:10 [memjs]', 2],
    ]);
  });

  it('reads a real profile of a busy Node process', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-prof-'));
    try {
      execFileSync(process.execPath, [
        '--cpu-prof',
        `--cpu-prof-dir=${dir}`,
        '-e',
        'const t = Date.now(); let x = 0; while (Date.now() - t < 200) x += JSON.stringify({ a: x }).length;',
      ]);
      const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!;
      const s = summarize(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as CpuProfile);
      expect(s.busyMs).toBeGreaterThan(100);
      expect(s.byGroup.reduce((sum, g) => sum + g.percent, 0)).toBeLessThanOrEqual(100.0001);
      expect(s.byFunction.length).toBeGreaterThan(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
