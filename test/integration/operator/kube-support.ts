import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { requireEnv } from '../../support/env';
import { TcpProxy } from '../../support/tcp-proxy';

/** The admin KubeConfig of the local stack. */
export function stackKubeConfig(): KubeConfig {
  requireEnv('KUBECONFIG');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/**
 * A TcpProxy in front of the API server and a KubeConfig that goes through it, for outage tests. TLS passes through
 * untouched; the API server's certificate names 127.0.0.1, which is where the proxy listens, so no server name
 * override is needed.
 */
export async function proxiedKubeConfig(kc: KubeConfig): Promise<{ proxy: TcpProxy; kubeConfig: KubeConfig }> {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user) throw new Error('the kubeconfig has no current cluster or user');
  const proxy = await TcpProxy.forAddress(new URL(cluster.server).host).start();
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromClusterAndUser({ ...cluster, server: `https://${proxy.address}` }, user);
  return { proxy, kubeConfig };
}

/** The HTTP status a call ends with: 200 when it succeeds, the server's code when it fails with one. */
export async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

/** Things that happened, in order, with a way to wait for the first one (from an index on) that matches. */
export class Recorder<T> {
  readonly items: T[] = [];
  private waiters: { from: number; match: (item: T) => boolean; resolve: (item: T) => void }[] = [];

  push(item: T): void {
    this.items.push(item);
    const index = this.items.length - 1;
    this.waiters = this.waiters.filter((w) => {
      if (index < w.from || !w.match(item)) return true;
      w.resolve(item);
      return false;
    });
  }

  /** The first item at or after `from` that matches; fails after `timeoutMs` naming `what`. */
  waitFor(match: (item: T) => boolean, what: string, timeoutMs = 30_000, from = 0): Promise<T> {
    const found = this.items.slice(from).find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        from,
        match,
        resolve: (item: T) => {
          clearTimeout(timer);
          resolve(item);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${what}: did not happen within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}
