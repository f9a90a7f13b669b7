/** A variable the integration global setup (or the caller's environment) must provide; fails the test clearly. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: integration tests run through jest's global setup, which starts the stack (npm test)`,
    );
  }
  return value;
}
