// Loaded before any probe starts: jest transpiles this ES-module package on first use, which blocks the event loop
// for seconds and would make a probe that is waiting on a socket time out.
import '@kubernetes/client-node';
import { setOperatorReplicas } from '../stack/components/cluster';
import { imageEnv } from '../stack/images/component';
import { ensureImages } from '../stack/images/images';
import { registerTestRun, releaseTestRun, up } from '../stack/stack';

/**
 * Brings the local stack up for the integration tests (or uses what `npm run up` or the environment provides) and
 * hands its addresses to the test workers through process.env, which they inherit.
 */
export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  registerTestRun();
  // Jest skips the global teardown when the setup fails: stop what this run started here, or it outlives the run.
  // The local cluster's images build meanwhile (cached: seconds when their inputs did not change), so that no test
  // shares the machine with a cold image build.
  const [stack, built] = await Promise.allSettled([up('test'), ensureImages()]);
  if (stack.status === 'rejected' || built.status === 'rejected') {
    await releaseTestRun();
    throw stack.status === 'rejected' ? stack.reason : (built as PromiseRejectedResult).reason;
  }
  const [result, images] = [stack.value, built.value];
  try {
    await setOperatorReplicas(result.env, 0);
  } catch (err) {
    await releaseTestRun();
    throw err;
  }
  Object.assign(process.env, result.env, imageEnv(images));
  const what = result.started.length > 0 ? `started ${result.started.join(', ')}` : 'everything was already up';
  process.stderr.write(`[stack] ready for tests in ${((Date.now() - started) / 1000).toFixed(1)} s (${what})\n`);
}
