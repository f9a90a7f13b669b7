import type { AccessRequest, Identity, ReviewApi } from '../../lib/kube/access-review';
import { UnavailableError } from '../errors';
import { authorizeCounters, authorizePath, kubernetesGuard, OPEN_ACCESS } from './auth';
import { errorReply } from './errors';

const writer: Identity = { username: 'system:serviceaccount:apps:writer', groups: ['system:serviceaccounts'] };

/** Allows `writer` get and update on counters in namespace "team" (name orders), and GET /metrics to nobody. */
function api(): ReviewApi & { requests: AccessRequest[] } {
  const requests: AccessRequest[] = [];
  return {
    requests,
    reviewToken: (token) => Promise.resolve(token === 'good' ? writer : undefined),
    reviewAccess: (identity, request) => {
      requests.push(request);
      const r = 'resource' in request ? request.resource : undefined;
      const ok =
        identity.username === writer.username &&
        r?.namespace === 'team' &&
        r.name === 'orders' &&
        ['get', 'update'].includes(r.verb ?? '');
      return Promise.resolve({ allowed: ok });
    },
  };
}

const settings = (reviewApi: ReviewApi) => ({ api: reviewApi, cacheMs: 60_000, audiences: [] });

async function rejection(p: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  const reply = errorReply(err);
  if (!reply) throw new Error(`not an API error: ${String(err)}`);
  return reply;
}

describe('kubernetesGuard', () => {
  it('answers 401 without a token, with a malformed header and with a token the cluster refuses', async () => {
    const guard = kubernetesGuard(settings(api()));
    expect(await rejection(guard.authenticate(undefined))).toMatchObject({
      status: 401,
      code: 'UNAUTHENTICATED',
      message: expect.stringContaining('no bearer token'),
    });
    expect((await rejection(guard.authenticate('Basic dXNlcjpwdw=='))).status).toBe(401);
    expect((await rejection(guard.authenticate('Bearer forged'))).message).toContain('not valid');
    expect(await guard.authenticate('Bearer good')).toEqual({ identity: writer });
    expect(await guard.authenticate('bearer  good')).toEqual({ identity: writer });
  });

  it('asks for the verb on counternamespaces/counters of the CounterNamespace, in its Kubernetes namespace', async () => {
    const reviews = api();
    const guard = kubernetesGuard(settings(reviews));
    const caller = await guard.authenticate('Bearer good');
    await authorizeCounters(guard, caller, ['update'], 'orders', 'team');
    expect(reviews.requests).toEqual([
      {
        resource: {
          group: 'tally.dev',
          resource: 'counternamespaces',
          subresource: 'counters',
          verb: 'update',
          namespace: 'team',
          name: 'orders',
        },
      },
    ]);
  });

  it('answers 403 naming the caller, the verb and the CounterNamespace', async () => {
    const guard = kubernetesGuard(settings(api()));
    const caller = await guard.authenticate('Bearer good');
    expect(await rejection(authorizeCounters(guard, caller, ['delete'], 'orders', 'team'))).toEqual({
      status: 403,
      code: 'PERMISSION_DENIED',
      field: 'namespace',
      message:
        'system:serviceaccount:apps:writer may not delete counternamespaces/counters of namespace "orders" (CounterNamespace team/orders)',
    });
    // Every verb an operation needs is checked: AddAndGetCount needs update and get.
    await authorizeCounters(guard, caller, ['update', 'get'], 'orders', 'team');
    expect((await rejection(authorizeCounters(guard, caller, ['update', 'delete'], 'orders', 'team'))).message).toMatch(
      /may not delete/,
    );
  });

  it('refuses a namespace without a CounterNamespace to authorize against, and says why', async () => {
    const guard = kubernetesGuard(settings(api()));
    const caller = await guard.authenticate('Bearer good');
    const reply = await rejection(authorizeCounters(guard, caller, ['get'], 'orders', undefined));
    expect(reply.status).toBe(403);
    expect(reply.message).toContain('has no CounterNamespace in Kubernetes');
  });

  it('guards the all-namespaces paths as non-resource URLs', async () => {
    const reviews = api();
    const guard = kubernetesGuard(settings(reviews));
    const caller = await guard.authenticate('Bearer good');
    expect((await rejection(authorizePath(guard, caller, '/metrics'))).status).toBe(403);
    expect(reviews.requests).toEqual([{ path: { path: '/metrics', verb: 'get' } }]);
  });

  it('answers 503 when the cluster cannot be asked: the caller is not at fault', async () => {
    const down: ReviewApi = {
      reviewToken: () => Promise.reject(new Error('connect ECONNREFUSED')),
      reviewAccess: () => Promise.reject(new Error('connect ECONNREFUSED')),
    };
    const err = await kubernetesGuard(settings(down))
      .authenticate('Bearer good')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(errorReply(err)).toMatchObject({ status: 503, code: 'UNAVAILABLE', retryAfter: 1 });
  });
});

describe('OPEN_ACCESS', () => {
  it('lets everyone do everything, without a token', async () => {
    const caller = await OPEN_ACCESS.authenticate(undefined);
    await expect(authorizeCounters(OPEN_ACCESS, caller, ['delete'], 'orders', undefined)).resolves.toBeUndefined();
    await expect(authorizePath(OPEN_ACCESS, caller, '/metrics')).resolves.toBeUndefined();
  });
});
