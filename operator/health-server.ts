import { createServer } from 'node:http';
import type { OperatorMetrics } from './metrics';

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/** /metrics for Prometheus, /healthz and /readyz (which say whether this process leads); a standby serves them too. */
export async function startHealthServer(
  port: number,
  metrics: OperatorMetrics,
  isLeader: () => boolean,
): Promise<HealthServer> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
      return;
    }
    if (req.url === '/healthz' || req.url === '/readyz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', leader: isLeader() }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.url}` } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', resolve);
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
