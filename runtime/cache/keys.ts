import { createHash } from 'node:crypto';

/** memcached's limit; longer keys, or keys with spaces or control characters, are replaced by a hash. */
const MAX_KEY_BYTES = 250;
const SAFE_KEY = /^[\x21-\x7e]+$/;

/**
 * The memcached key of a counter: prefix:namespace:kind:counter, or prefix:namespace:kind:#<sha256> when the counter
 * name cannot be a memcached key as it is. `kind` keeps BestEffort values and rollup checkpoints apart.
 */
export function cacheKey(prefix: string, namespace: string, kind: 'be' | 'rollup', counter: string): string {
  const plain = `${prefix}:${namespace}:${kind}:${counter}`;
  if (Buffer.byteLength(plain) <= MAX_KEY_BYTES && SAFE_KEY.test(plain) && !counter.startsWith('#')) return plain;
  const digest = createHash('sha256').update(counter, 'utf8').digest('base64url');
  return `${prefix}:${namespace}:${kind}:#${digest}`;
}
