/**
 * Settings read from the environment (or a flag), checked when the process starts: a value that is not what the
 * setting takes stops the start with a message naming the setting, the range and what it got, instead of running
 * with NaN (a timeout that never fires, a cool-down that never ends).
 */
export function parseInteger(
  raw: string | undefined,
  fallback: number,
  what: string,
  min: number,
  max: number,
): number {
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${what} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

/** The integer in environment variable `name`, `fallback` when unset or empty. */
export function intFromEnv(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  range: { min: number; max: number },
): number {
  return parseInteger(env[name], fallback, name, range.min, range.max);
}
