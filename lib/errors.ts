/**
 * The message of anything thrown: an Error's message, else its string form. `catch (err)` gives `unknown`; this is
 * the one place that turns it into text, so no caller needs an `(err as Error)` cast.
 */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Anything thrown, as an Error (a thrown string or object is wrapped, keeping it as the cause). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err), { cause: err });
}

/**
 * A new error that says what was being done and keeps what went wrong as its cause:
 * `whileDoing('creating keyspace orders', err)` reads "while creating keyspace orders: <cause's message>".
 */
export function whileDoing(doing: string, cause: unknown): Error {
  return new Error(`while ${doing}: ${messageOf(cause)}`, { cause });
}
