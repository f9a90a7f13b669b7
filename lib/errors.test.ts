import { asError, messageOf, whileDoing } from './errors';

describe('error helpers', () => {
  it('gives the message of an Error and the string form of anything else', () => {
    expect(messageOf(new Error('boom'))).toBe('boom');
    expect(messageOf('plain')).toBe('plain');
    expect(messageOf(42)).toBe('42');
  });

  it('wraps a thrown non-Error, keeping it as the cause', () => {
    const err = asError({ code: 7 });
    expect(err).toBeInstanceOf(Error);
    expect(err.cause).toEqual({ code: 7 });
    const original = new Error('x');
    expect(asError(original)).toBe(original);
  });

  it('says what was being done and keeps the cause', () => {
    const cause = new Error('connection refused');
    const err = whileDoing('creating keyspace orders', cause);
    expect(err.message).toBe('while creating keyspace orders: connection refused');
    expect(err.cause).toBe(cause);
  });
});
