import { releaseTestRun } from '../stack/stack';

/**
 * Stops what test runs started, once no other test run is using the stack; a stack brought up by `npm run up` stays
 * up.
 */
export default async function globalTeardown(): Promise<void> {
  await releaseTestRun();
  // What still keeps this process alive (jest.config.js forceExit): to find what leaks it.
  const left = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
  if (left.length > 0)
    process.stderr.write(`[stack] still active in jest's process after the teardown: ${left.join(', ')}\n`);
}
