import { releaseTestRun } from '../stack/stack';

/**
 * Stops what test runs started, once no other test run is using the stack; a stack brought up by `npm run up` stays
 * up.
 */
export default async function globalTeardown(): Promise<void> {
  await releaseTestRun();
}
