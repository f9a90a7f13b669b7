import { KubeConfig } from '@kubernetes/client-node';
import * as net from 'node:net';
import { KubeClient } from './kube-api';

/** An API server that accepts connections and never answers: a half-open connection or a hung apiserver. */
async function silentServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('KubeClient', () => {
  it('fails a call the API server never answers after its timeout, instead of holding the reconcile forever', async () => {
    const server = await silentServer();
    try {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: server.url, skipTLSVerify: true }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      const kube = new KubeClient(kc, 300);
      const started = Date.now();
      await expect(kube.getCounterNamespace('ns', 'name')).rejects.toThrow(/abort/i);
      await expect(
        kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'n', namespace: 'ns' } }),
      ).rejects.toThrow(/abort/i);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await server.close();
    }
  });
});
