import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs, on stdout unless `fd` says otherwise (a command whose stdout is its result logs to 2);
 * LOG_LEVEL picks the level (info by default).
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info', fd = 1): Logger {
  return pino(
    { name, level, base: { component: name }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd, sync: true }),
  );
}

export type { Logger };
