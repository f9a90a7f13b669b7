import type { RequestListener, ServerResponse } from 'node:http';

/**
 * `Connection: close` while a server drains. Until start(), the responses in flight are only tracked; from start()
 * on, each of them that has not sent its headers yet and every later response carries `Connection: close`, so Node
 * closes the socket after a complete response and a keep-alive client opens its next connection elsewhere (to a
 * ready pod) instead of having an idle connection closed under it, or waiting on one the server keeps open.
 */
export class ConnectionDrain {
  private readonly inFlight = new Set<ServerResponse>();
  private started = false;

  get draining(): boolean {
    return this.started;
  }

  /** The listener to give node:http: `inner` with the header added while draining. */
  wrap(inner: RequestListener): RequestListener {
    const inFlight = this.inFlight;
    // Called with the response as `this`: no closure per request on the hot path.
    function forget(this: ServerResponse): void {
      inFlight.delete(this);
    }
    return (req, res) => {
      if (this.started) {
        res.setHeader('connection', 'close');
      } else {
        inFlight.add(res);
        res.once('close', forget);
      }
      inner(req, res);
    };
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const res of this.inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
    this.inFlight.clear();
  }
}
