/** Flag values fall back to environment variables, so containers can be configured either way. */
export function stringOption(flag: string | undefined, envName: string, fallback?: string): string | undefined {
  return flag ?? process.env[envName] ?? fallback;
}

export function intOption(flag: string | undefined, envName: string, fallback: number, what: string): number {
  const raw = flag ?? process.env[envName];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${what} must be an integer from 0 to 65535, got "${raw}"`);
  return n;
}

export function boolOption(flag: boolean | undefined, envName: string): boolean {
  if (flag !== undefined) return flag;
  const raw = process.env[envName];
  return raw === '1' || raw?.toLowerCase() === 'true';
}

/** Resolves on SIGTERM (Kubernetes stopping the pod) or SIGINT (a terminal), after logging which. */
export function untilStopSignal(log: { info(obj: object, msg: string): void }): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
