import { ApiException, HttpMethod, RequestContext, type ObservableMiddleware } from '@kubernetes/client-node';
import { bounded, errorMessage, httpStatus, whileCalling } from './request';

/** Runs the options' middleware on a request, as client-node does before sending it. */
async function prepared(options: ReturnType<typeof bounded>): Promise<RequestContext> {
  expect(options.middlewareMergeStrategy).toBe('append');
  let context = new RequestContext('https://example.invalid/api/v1/namespaces', HttpMethod.GET);
  for (const m of options.middleware as ObservableMiddleware[]) context = await m.pre(context).toPromise();
  return context;
}

describe('bounded', () => {
  it('gives the request a signal that aborts once the timeout has passed', async () => {
    const context = await prepared(bounded({ timeoutMs: 20 }));
    const signal = context.getSignal()!;
    expect(signal.aborted).toBe(false);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    expect(signal.aborted).toBe(true);
  });

  it('aborts the request when the caller’s signal aborts, and starts the timeout only when it is sent', async () => {
    const caller = new AbortController();
    const options = bounded({ timeoutMs: 50, signal: caller.signal });
    await new Promise((r) => setTimeout(r, 80)); // longer than the timeout: it must not have started yet
    const context = await prepared(options);
    expect(context.getSignal()!.aborted).toBe(false);
    caller.abort();
    expect(context.getSignal()!.aborted).toBe(true);
  });

  it('leaves the request alone without a timeout or signal', async () => {
    expect((await prepared(bounded({}))).getSignal()).toBeUndefined();
  });
});

describe('httpStatus and errorMessage', () => {
  const status = JSON.stringify({ kind: 'Status', code: 409, message: 'the object has been modified' });

  it('reads API exceptions, with their body as JSON text or as an object', () => {
    const asText = new ApiException(409, 'Conflict', status, {});
    expect(httpStatus(asText)).toBe(409);
    expect(errorMessage(asText)).toBe('HTTP 409: the object has been modified');
    expect(errorMessage(new ApiException(404, 'x', { message: 'not found' }, {}))).toBe('HTTP 404: not found');
    expect(errorMessage(new ApiException(502, 'x', '<html>bad gateway</html>', {}))).toBe('HTTP 502');
  });

  it('reads the status of a failed watch request, and none from a network error', () => {
    expect(httpStatus(Object.assign(new Error('Gone'), { statusCode: 410 }))).toBe(410);
    expect(httpStatus(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBeUndefined();
    expect(errorMessage(new Error('socket hang up'))).toBe('socket hang up');
    expect(errorMessage('plain')).toBe('plain');
  });
});

describe('whileCalling', () => {
  it('says what was being done with the server’s message, and keeps the exception as the cause', () => {
    const conflict = new ApiException(409, 'Conflict', JSON.stringify({ message: 'the object has been modified' }), {});
    const err = whileCalling('adding the finalizer', conflict);
    expect(err.message).toBe('while adding the finalizer: HTTP 409: the object has been modified');
    expect(err.cause).toBe(conflict);
  });
});
