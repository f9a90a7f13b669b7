import * as fs from 'node:fs';
import * as net from 'node:net';

const handedOut = new Set<number>();

/** The lowest port a service of the stack is given: below it lie the well-known and commonly configured ports. */
const LOWEST = 10000;

/**
 * The kernel's ephemeral range: it hands these ports to outgoing connections and to listen(0). A port chosen there
 * and bound seconds later (Cassandra binds its ports about ten seconds after it starts, longer on a busy machine) can
 * meanwhile become the local end of any connection, and the service then fails with "address in use". Ports outside
 * this range are only ever taken by a process that asks for them by number.
 */
export function ephemeralRange(file = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] | undefined {
  try {
    const [low, high] = fs.readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(low) && Number.isInteger(high) ? [low!, high!] : undefined;
  } catch {
    return undefined;
  }
}

/** The ports to choose from: the larger stretch outside the ephemeral range, or none when it leaves too little. */
export function candidateRange(ephemeral: [number, number] | undefined): [number, number] | undefined {
  if (!ephemeral) return undefined;
  const [low, high] = ephemeral;
  const below: [number, number] = [LOWEST, low - 1];
  const above: [number, number] = [Math.max(LOWEST, high + 1), 65535];
  const size = ([a, b]: [number, number]): number => b - a + 1;
  const best = size(below) >= size(above) ? below : above;
  return size(best) >= 1000 ? best : undefined;
}

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : undefined));
    });
  });
}

const candidates = candidateRange(ephemeralRange());

/**
 * A TCP port on 127.0.0.1 that is free now and that nothing else is handed by the kernel before the component binds
 * it (see ephemeralRange). Standard ports may be taken on these machines, so never assume them. Where the ephemeral
 * range cannot be read or leaves no room, falls back to a port the kernel picks.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const wanted = candidates ? candidates[0] + Math.floor(Math.random() * (candidates[1] - candidates[0] + 1)) : 0;
    const port = await tryListen(wanted);
    // Skip ports already given to another component in this run: it may not have bound its port yet.
    if (port !== undefined && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(
    candidates
      ? `could not find a free TCP port on 127.0.0.1 between ${candidates[0]} and ${candidates[1]} in 100 tries`
      : 'could not find a free TCP port on 127.0.0.1',
  );
}

/**
 * The port a component had before (from its recorded endpoint) when it is free again, so that a service that died
 * comes back on its address, as a restarted node would, and its clients keep working; else a new free port. A
 * process killed with connections open leaves them closing for a moment (FIN_WAIT, LAST_ACK), and the port cannot
 * be bound until they are gone: the previous port is tried for up to `waitMs` before another is taken.
 */
export async function portOr(previous: number | undefined, waitMs = 10_000): Promise<number> {
  if (previous !== undefined) {
    const deadline = Date.now() + waitMs;
    // Not checked against handedOut: in a long-lived process (tests) this component itself was handed it before.
    for (;;) {
      if ((await tryListen(previous)) === previous) {
        handedOut.add(previous);
        return previous;
      }
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return freePort();
}

/** True when something accepts TCP connections on host:port. */
export function isListening(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
