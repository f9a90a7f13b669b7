export {
  TallyClient,
  DEFAULT_ACCEPT_LIMIT_SECONDS,
  type TallyClientOptions,
  type CallOptions,
  type IdempotencyToken,
  type AddCountRequest,
  type GetCountRequest,
  type ClearCountRequest,
  type MutationResponse,
  type CountResponse,
  type NamespaceList,
  type CounterType,
  type BatchOutcome,
} from './client';
export * from './errors';
export { BearerTokenSource, jwtExpiry, type BearerToken } from './auth';
export { backoffDelay, parseRetryAfter, acceptDeadline, DEFAULT_BACKOFF, type BackoffOptions } from './retry';
export type { components, paths, operations } from './openapi-types';
