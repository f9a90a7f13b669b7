/** Which partition an event goes to: time bucket from its time, event bucket from a hash of its idempotency token. */

export function timeBucket(eventTimeMs: number, secondsPerBucket: number): number {
  return Math.floor(eventTimeMs / (secondsPerBucket * 1000));
}

/** FNV-1a over the token's UTF-16 code units: cheap, stable across processes and releases. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export function eventBucket(eventId: string, bucketsPerCounter: number): number {
  return fnv1a(eventId) % bucketsPerCounter;
}

/** The time buckets that hold events in (fromExclusiveMs, toInclusiveMs], oldest first. */
export function timeBucketsBetween(fromExclusiveMs: number, toInclusiveMs: number, secondsPerBucket: number): number[] {
  if (toInclusiveMs <= fromExclusiveMs) return [];
  const first = timeBucket(fromExclusiveMs + 1, secondsPerBucket);
  const last = timeBucket(toInclusiveMs, secondsPerBucket);
  const out: number[] = [];
  for (let b = first; b <= last; b++) out.push(b);
  return out;
}
