import { cacheKey } from './keys';

describe('cacheKey', () => {
  it('uses the plain name when memcached can take it', () => {
    expect(cacheKey('tally', 'orders', 'rollup', 'checkout-clicks')).toBe('tally:orders:rollup:checkout-clicks');
  });
  it.each(['has space', 'tab\there', 'ünïcode', 'x'.repeat(300), '#looks-hashed'])(
    'hashes %j into a valid key',
    (name) => {
      const key = cacheKey('tally', 'orders', 'be', name);
      expect(key).toMatch(/^tally:orders:be:#[A-Za-z0-9_-]{43}$/);
      expect(Buffer.byteLength(key)).toBeLessThanOrEqual(250);
    },
  );
  it('keeps distinct names distinct and kinds apart', () => {
    expect(cacheKey('t', 'n', 'be', 'a b')).not.toBe(cacheKey('t', 'n', 'be', 'a  b'));
    expect(cacheKey('t', 'n', 'be', 'c')).not.toBe(cacheKey('t', 'n', 'rollup', 'c'));
  });
});
