import { FAST } from '../../support/runtime-harness';

/** What the client sent, seen through a fetch that records every request before passing it on. */
export interface Sent {
  url: string;
  body: Record<string, unknown> | undefined;
  atMs: number;
  /** The status, or the error name, once the attempt ended, and when. */
  answer?: string;
  answeredAtMs?: number;
  retryAfter?: string | null;
}

export function recordingFetch(): { fetch: typeof fetch; sent: Sent[] } {
  const sent: Sent[] = [];
  const recording: typeof fetch = async (input, init = {}) => {
    const s: Sent = {
      url: input instanceof Request ? input.url : String(input),
      body: typeof init.body === 'string' ? (JSON.parse(init.body) as Record<string, unknown>) : undefined,
      atMs: Date.now(),
    };
    if (!s.url.endsWith('/v1/namespaces')) sent.push(s);
    try {
      const res = await fetch(input, init);
      s.answer = String(res.status);
      s.retryAfter = res.headers.get('retry-after');
      s.answeredAtMs = Date.now();
      return res;
    } catch (err) {
      s.answer = (err as Error).name;
      s.answeredAtMs = Date.now();
      throw err;
    }
  };
  return { fetch: recording, sent };
}

/** A namespace spec with FAST rollups and the given accept limit. */
export function withAcceptLimit(acceptLimitSeconds: number): Record<string, unknown> {
  return { ...FAST, eventStorage: { ...FAST.eventStorage, acceptLimitSeconds } };
}
