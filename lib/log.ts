import pino, { type Logger } from 'pino';

/** Structured JSON logs on stdout; LOG_LEVEL picks the level (info by default). */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { component: name }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };
