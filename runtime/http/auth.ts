import { COUNTERS_SUBRESOURCE, CRD_GROUP, CRD_PLURAL } from '../../api/names';
import { messageOf } from '../../lib/errors';
import {
  AccessReviewer,
  type AccessRequest,
  type Identity,
  type ReviewApi,
  type ReviewOutcome,
} from '../../lib/kube/access-review';
import { UnavailableError } from '../errors';
import { RequestError } from './errors';

/** What a counter operation does to the counters of a CounterNamespace, as an RBAC verb. */
export type CounterVerb = 'get' | 'update' | 'delete';

/** Who is calling: the identity the token belongs to, or none when authentication is off. */
export interface Caller {
  identity?: Identity;
}

/**
 * Who may do what. Every request but health, readiness and the OpenAPI document asks it; with authentication off
 * (OPEN_ACCESS) it lets everything through.
 */
export interface Guard {
  readonly enabled: boolean;
  /** The caller of a request with this Authorization header; a RequestError (401) without a valid bearer token. */
  authenticate(authorization: string | undefined): Promise<Caller>;
  /** Whether the caller may `verb` the counters of a namespace whose CounterNamespace lives in `home`. */
  mayCount(caller: Caller, verb: CounterVerb, namespace: string, home: string | undefined): Promise<boolean>;
  /** Whether the caller may GET a path that shows every namespace (metrics, status, the full listing). */
  mayGetPath(caller: Caller, path: string): Promise<boolean>;
}

export const OPEN_ACCESS: Guard = {
  enabled: false,
  authenticate: () => Promise.resolve({}),
  mayCount: () => Promise.resolve(true),
  mayGetPath: () => Promise.resolve(true),
};

/** 403 unless the caller may do each of `verbs` to the namespace's counters; the message names the first refused. */
export async function authorizeCounters(
  guard: Guard,
  caller: Caller,
  verbs: readonly CounterVerb[],
  namespace: string,
  home: string | undefined,
): Promise<void> {
  for (const verb of verbs) {
    if (!(await guard.mayCount(caller, verb, namespace, home))) throw denied(caller, verb, namespace, home);
  }
}

function denied(caller: Caller, verb: CounterVerb, namespace: string, home: string | undefined): RequestError {
  const who = caller.identity?.username ?? 'the caller';
  const where =
    home === undefined
      ? `; the namespace has no CounterNamespace in Kubernetes to authorize against (serve it from a CounterNamespace document with metadata.namespace)`
      : ` (CounterNamespace ${home}/${namespace})`;
  return new RequestError(
    'PERMISSION_DENIED',
    `${who} may not ${verb} ${CRD_PLURAL}/${COUNTERS_SUBRESOURCE} of namespace "${namespace}"${where}`,
    'namespace',
  );
}

/** 403 unless the caller may GET the path. */
export async function authorizePath(guard: Guard, caller: Caller, path: string): Promise<void> {
  if (await guard.mayGetPath(caller, path)) return;
  throw new RequestError('PERMISSION_DENIED', `${caller.identity?.username ?? 'the caller'} may not get ${path}`);
}

const BEARER = /^Bearer +([^\s]+) *$/i;

/** How the runtime asks the cluster: the review API, how long answers are reused, the tokens' audiences. */
export interface AuthSettings {
  api: ReviewApi;
  cacheMs: number;
  audiences: string[];
}

/** At most this many identities are cached, and as many decisions: a few MiB. */
const CACHE_ENTRIES = 10_000;

/**
 * Authentication by the cluster's own identities (TokenReview) and authorization by its RBAC (SubjectAccessReview):
 * counting is `get`/`update`/`delete` on counternamespaces/counters in the CounterNamespace's Kubernetes namespace,
 * the all-namespaces paths are non-resource URLs, as kube-rbac-proxy guards /metrics. A cluster that cannot be asked
 * answers 503, never 401 or 403: the caller is not at fault.
 */
export function kubernetesGuard(
  settings: AuthSettings,
  onReview?: (review: 'token' | 'access', outcome: ReviewOutcome) => void,
): Guard {
  const reviewer = new AccessReviewer(settings.api, {
    cacheMs: settings.cacheMs,
    maxEntries: CACHE_ENTRIES,
    audiences: settings.audiences,
    ...(onReview ? { onReview } : {}),
  });
  const unavailable = (err: unknown): never => {
    throw new UnavailableError(`cannot check the caller's access with the Kubernetes API: ${messageOf(err)}`, {
      cause: err,
    });
  };
  const allowed = async (caller: Caller, request: AccessRequest): Promise<boolean> => {
    if (!caller.identity) return false;
    return (await reviewer.authorize(caller.identity, request).catch(unavailable)).allowed;
  };
  return {
    enabled: true,
    async authenticate(authorization) {
      if (authorization === undefined || authorization === '') {
        throw new RequestError('UNAUTHENTICATED', 'no bearer token: send Authorization: Bearer <token>');
      }
      const token = BEARER.exec(authorization)?.[1];
      if (!token) throw new RequestError('UNAUTHENTICATED', 'the Authorization header is not "Bearer <token>"');
      const identity = await reviewer.authenticate(token).catch(unavailable);
      if (!identity) {
        throw new RequestError('UNAUTHENTICATED', 'the bearer token is not valid (expired, revoked or not for Tally)');
      }
      return { identity };
    },
    mayCount(caller, verb, namespace, home) {
      if (home === undefined) return Promise.resolve(false);
      return allowed(caller, {
        resource: {
          group: CRD_GROUP,
          resource: CRD_PLURAL,
          subresource: COUNTERS_SUBRESOURCE,
          verb,
          namespace: home,
          name: namespace,
        },
      });
    },
    mayGetPath(caller, path) {
      return allowed(caller, { path: { path, verb: 'get' } });
    },
  };
}
