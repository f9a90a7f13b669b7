import { down } from '../stack/stack';

/** Stops only what global setup started; a stack brought up by `npm run up` stays up. */
export default async function globalTeardown(): Promise<void> {
  const started = (globalThis as { __tallyStarted?: string[] }).__tallyStarted ?? [];
  if (started.length > 0) await down(started);
}
