import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Where a process's CPU went, from a V8 CPU profile (`node --cpu-prof`, e.g. the bench's runtime with
 * BENCH_RUNTIME_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"): self time by the code it was spent in, grouped as a
 * reader asks the question (Node's HTTP server, express, memjs, Tally's own folders, the garbage collector).
 *
 *   node dist/test/bench/profile-summary.js FILE.cpuprofile [TOP]
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Share {
  name: string;
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  /** Sampled time, idle excluded. */
  busyMs: number;
  idleMs: number;
  byGroup: Share[];
  byFunction: Share[];
}

/** The group a frame's code belongs to: a Node built-in, a package, a folder of Tally's, or V8's own bookkeeping. */
export function groupOf(frame: CallFrame): string {
  const url = frame.url;
  if (!url) {
    // (garbage collector), (program): V8's own; native functions without a script are their own group.
    return frame.functionName.startsWith('(') ? frame.functionName : `native ${frame.functionName || '(anonymous)'}`;
  }
  if (url.startsWith('node:')) {
    const module = url.slice('node:'.length).replace(/^internal\//, '');
    // node:_http_server, node:internal/http, node:_http_common: all "node:http".
    if (/^_?http|^http/.test(module)) return 'node:http';
    if (/^streams?\b|^_stream/.test(module)) return 'node:stream';
    return `node:${module.split('/')[0]!.replace(/^_/, '')}`;
  }
  const file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const dist = file.lastIndexOf('/dist/');
  if (dist >= 0) {
    const parts = file.slice(dist + '/dist/'.length).split('/');
    return `tally ${parts.slice(0, Math.min(2, parts.length - 1)).join('/') || parts[0]}`;
  }
  return path.basename(file);
}

function shares(totals: Map<string, number>, busyMs: number, top: number): Share[] {
  return [...totals]
    .map(([name, ms]) => ({ name, ms, percent: busyMs > 0 ? (100 * ms) / busyMs : 0 }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top);
}

/** Self time per group and per function; a sample's time is the delta to the next sample, as V8 records it. */
export function summarize(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const groups = new Map<string, number>();
  const functions = new Map<string, number>();
  let busyMs = 0;
  let idleMs = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const frame = byId.get(id)?.callFrame;
    if (!frame) return;
    if (frame.functionName === '(idle)') {
      idleMs += ms;
      return;
    }
    busyMs += ms;
    const group = groupOf(frame);
    groups.set(group, (groups.get(group) ?? 0) + ms);
    const where = frame.url ? `${path.basename(frame.url)}:${frame.lineNumber + 1}` : '';
    const fn = `${frame.functionName || '(anonymous)'}${where ? ` ${where}` : ''} [${group}]`;
    functions.set(fn, (functions.get(fn) ?? 0) + ms);
  });
  return { busyMs, idleMs, byGroup: shares(groups, busyMs, top), byFunction: shares(functions, busyMs, top) };
}

export function renderSummary(s: ProfileSummary): string {
  const rows = (list: Share[]): string =>
    list.map((x) => `  ${x.percent.toFixed(1).padStart(5)}%  ${x.ms.toFixed(0).padStart(7)} ms  ${x.name}`).join('\n');
  return [
    `busy ${s.busyMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms (self time, idle excluded from the shares)`,
    'by group:',
    rows(s.byGroup),
    'by function:',
    rows(s.byFunction),
  ].join('\n');
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node dist/test/bench/profile-summary.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${renderSummary(summarize(profile, top ? Number(top) : 15))}\n`);
}
