import { createHash } from 'node:crypto';
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  type KubeConfig,
  type V1NonResourceAttributes,
  type V1ResourceAttributes,
} from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import { makeBoundedApiClient, whileCalling } from './request';

/** Who a token belongs to, as the cluster's authenticators say (TokenReview status.user). */
export interface Identity {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** What an identity asks to do: on an API resource (RBAC rules) or on a non-resource path (nonResourceURLs). */
export type AccessRequest = { resource: V1ResourceAttributes } | { path: V1NonResourceAttributes };

export interface Decision {
  allowed: boolean;
  /** The authorizer's reason, when it gave one (RBAC gives one for allowed requests: the binding). */
  reason?: string;
}

/** The review calls the cluster answers: TokenReview and SubjectAccessReview. */
export interface ReviewApi {
  reviewToken(token: string, audiences: string[]): Promise<Identity | undefined>;
  reviewAccess(identity: Identity, request: AccessRequest): Promise<Decision>;
}

export interface AccessReviewerOptions {
  /** How long an identity or a decision is reused before the cluster is asked again; 0: not reused. */
  cacheMs: number;
  /** At most this many identities, and as many decisions, are kept (least recently used go first). */
  maxEntries: number;
  /** The audiences a token must be meant for; empty: the API server's own. */
  audiences?: string[];
  /** Told of each call to the cluster (a cache miss) and its outcome. */
  onReview?: (review: 'token' | 'access', outcome: ReviewOutcome) => void;
}

/** How a call to the cluster ended: a token accepted or not, a request allowed or not, or no answer. */
export type ReviewOutcome = 'authenticated' | 'unauthenticated' | 'allowed' | 'denied' | 'error';

/** TokenReview and SubjectAccessReview through client-node, each request bounded by `timeoutMs`. */
export function kubernetesReviewApi(kc: KubeConfig, timeoutMs: number): ReviewApi {
  const authn = makeBoundedApiClient(kc, AuthenticationV1Api, timeoutMs);
  const authz = makeBoundedApiClient(kc, AuthorizationV1Api, timeoutMs);
  return {
    async reviewToken(token, audiences) {
      const review = await authn
        .createTokenReview({
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } },
        })
        .catch((err: unknown) => {
          throw whileCalling('reviewing a bearer token (TokenReview)', err);
        });
      const user = review.status?.user;
      if (!review.status?.authenticated || !user?.username) return undefined;
      return {
        username: user.username,
        groups: user.groups ?? [],
        ...(user.uid ? { uid: user.uid } : {}),
        ...(user.extra ? { extra: user.extra } : {}),
      };
    },
    async reviewAccess(identity, request) {
      const review = await authz
        .createSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: identity.username,
              groups: identity.groups,
              ...(identity.uid ? { uid: identity.uid } : {}),
              ...(identity.extra ? { extra: identity.extra } : {}),
              ...('resource' in request
                ? { resourceAttributes: request.resource }
                : { nonResourceAttributes: request.path }),
            },
          },
        })
        .catch((err: unknown) => {
          throw whileCalling('checking an authorization (SubjectAccessReview)', err);
        });
      const allowed = review.status?.allowed === true && review.status.denied !== true;
      const reason = review.status?.reason;
      return reason ? { allowed, reason } : { allowed };
    },
  };
}

/**
 * Authenticates bearer tokens and authorizes requests the way the API server itself does for webhooks (TokenReview,
 * SubjectAccessReview), with both answers cached for `cacheMs`: a hot path asks the cluster once per identity and
 * decision, not once per request. Concurrent lookups of the same key share one call; a failed call is not cached.
 * Tokens are kept only as SHA-256 digests.
 */
export class AccessReviewer {
  private readonly identities: LRUCache<string, Identity | false, string>;
  private readonly decisions: LRUCache<string, Decision, { identity: Identity; request: AccessRequest }>;
  /** Each cached identity's part of a decision key, made once: the hot path asks with the same objects. */
  private readonly identityKeys = new WeakMap<Identity, string>();

  constructor(
    api: ReviewApi,
    private readonly opts: AccessReviewerOptions,
  ) {
    // A TTL of 1 ms for 0: nothing is reused, but concurrent lookups of one key still share the call.
    const common = { max: opts.maxEntries, ttl: Math.max(1, opts.cacheMs) };
    const audiences = opts.audiences ?? [];
    this.identities = new LRUCache<string, Identity | false, string>({
      ...common,
      fetchMethod: async (_digest, _stale, { context: token }) => {
        const identity = await this.counted('token', () => api.reviewToken(token, audiences));
        return identity ?? false;
      },
    });
    this.decisions = new LRUCache<string, Decision, { identity: Identity; request: AccessRequest }>({
      ...common,
      fetchMethod: (_key, _stale, { context }) =>
        this.counted('access', () => api.reviewAccess(context.identity, context.request)),
    });
  }

  /** The token's identity, or undefined when the cluster does not accept the token. Rejects when it cannot ask. */
  async authenticate(token: string): Promise<Identity | undefined> {
    const digest = createHash('sha256').update(token).digest('base64url');
    // A fresh answer is taken as it is; fetch (a promise, a shared call) only on a miss.
    const cached = this.identities.get(digest);
    if (cached !== undefined) return cached || undefined;
    return (await this.identities.fetch(digest, { context: token })) || undefined;
  }

  /** Whether the identity may do what it asks. Rejects when the cluster cannot be asked. */
  async authorize(identity: Identity, request: AccessRequest): Promise<Decision> {
    let who = this.identityKeys.get(identity);
    if (who === undefined) this.identityKeys.set(identity, (who = JSON.stringify(identity)));
    const key = `${who}\u0000${JSON.stringify(request)}`;
    return this.decisions.get(key) ?? (await this.decisions.fetch(key, { context: { identity, request } }))!;
  }

  private async counted<T extends Identity | Decision | undefined>(
    review: 'token' | 'access',
    call: () => Promise<T>,
  ): Promise<T> {
    let outcome: ReviewOutcome = 'error';
    try {
      const result = await call();
      if (review === 'token') outcome = result ? 'authenticated' : 'unauthenticated';
      else outcome = (result as Decision).allowed ? 'allowed' : 'denied';
      return result;
    } finally {
      this.opts.onReview?.(review, outcome);
    }
  }
}
