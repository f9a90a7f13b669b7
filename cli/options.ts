import { parseInteger } from '../lib/env';

/** Flag values fall back to environment variables, so containers can be configured either way. */
export function stringOption(flag: string | undefined, envName: string, fallback?: string): string | undefined {
  return flag ?? process.env[envName] ?? fallback;
}

/** An integer from 0 to max (default 65535, a port) from the flag, else the environment variable, else fallback. */
export function intOption(
  flag: string | undefined,
  envName: string,
  fallback: number,
  what: string,
  max = 65535,
): number {
  return parseInteger(flag ?? process.env[envName], fallback, what, 0, max);
}

export function boolOption(flag: boolean | undefined, envName: string): boolean {
  if (flag !== undefined) return flag;
  const raw = process.env[envName];
  return raw === '1' || raw?.toLowerCase() === 'true';
}

/**
 * Resolves on SIGTERM (Kubernetes stopping the pod) or SIGINT (a terminal), after logging which. With onRepeat, a
 * later SIGTERM or SIGINT is logged and handed to it (e.g. to hurry a shutdown) instead of killing the process;
 * without it, a second signal has its default effect (it ends the process at once).
 */
export function untilStopSignal(
  log: { info(obj: object, msg: string): void },
  onRepeat?: (signal: NodeJS.Signals) => void,
): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.info({ signal }, 'stop signal while shutting down');
        onRepeat?.(signal);
        return;
      }
      stopping = true;
      log.info({ signal }, 'shutting down');
      if (!onRepeat) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
