import { NAMESPACE_NAME_PATTERN, namespaceConfigSchema } from '../../api/namespace-config';
import { COUNTER_TYPES } from '../../api/spec-schema';
import { RECENT_ERRORS_KEPT } from '../observability/recent-errors';

/** Limits a request must stay within; the OpenAPI document states them and validation enforces them from it. */
export const LIMITS = {
  counterNameMaxLength: 256,
  tokenMaxLength: 128,
  bodyMaxBytes: 16 * 1024,
  /** AddCounts and GetCounts: items a request may carry, and its body (500 items of about 1 KiB each). */
  batchMaxItems: 500,
  batchBodyMaxBytes: 512 * 1024,
  /** Items of one batch run at most this many at once, so one batch cannot fill the Cassandra connections alone. */
  batchConcurrency: 16,
} as const;

/** No control characters: names end up in logs, cache keys and CQL values. */
export const COUNTER_NAME_PATTERN = '^[^\\u0000-\\u001f\\u007f]+$';

const namespaceName = {
  type: 'string',
  pattern: NAMESPACE_NAME_PATTERN,
  description: 'A counter namespace served by this runtime (GET /v1/namespaces).',
  examples: ['orders'],
};
const counterName = {
  type: 'string',
  minLength: 1,
  maxLength: LIMITS.counterNameMaxLength,
  pattern: COUNTER_NAME_PATTERN,
  description: 'The counter, unique within its namespace. Counters need not be created first.',
  examples: ['checkout-clicks'],
};

/**
 * A batch's items: objects, each checked against the single call's schema when it runs (so a bad item fails alone
 * and the document does not claim the whole request is refused for it).
 */
function batchItems(single: string, description: string) {
  return {
    type: 'array',
    minItems: 1,
    maxItems: LIMITS.batchMaxItems,
    description: `${description} At most ${LIMITS.batchMaxItems} items (400 beyond) and ${LIMITS.batchBodyMaxBytes} bytes (413 beyond).`,
    items: {
      type: 'object',
      additionalProperties: true,
      description: `Checked as a ${single} (#/components/schemas/${single}) when it runs.`,
    },
  } as const;
}

/** A batch's results: one per item, in the items' order, each a success or the single call's error. */
function batchResults<S extends object>(success: S) {
  return {
    type: 'array',
    description: "One per item, in the order of the items: status 200 and the single call's answer, or its error.",
    items: { oneOf: [success, { $ref: '#/components/schemas/BatchItemError' }] },
  } as const;
}

const schemas = {
  IdempotencyToken: {
    type: 'object',
    description:
      'Identifies one mutation: retrying or hedging with the same token and generation_time never counts twice. ' +
      'Without one the server makes one, and such a call is NOT safe to retry (the response returns the token used).',
    required: ['token', 'generation_time'],
    additionalProperties: false,
    properties: {
      token: {
        type: 'string',
        minLength: 1,
        maxLength: LIMITS.tokenMaxLength,
        examples: ['5f1d7c9e-3b7a-4d2e-9a51-0c2b6f4e8d10'],
      },
      generation_time: {
        type: 'string',
        format: 'date-time',
        description:
          'When the client made the token (RFC 3339). Eventual and Accurate counters refuse a time outside the ' +
          'namespace accept limit of now (400); BestEffort counters do not check it. A leap second (23:59:60) is ' +
          'refused (400): send a time between two seconds instead.',
        examples: ['2024-10-05T14:48:00Z'],
      },
    },
  },
  AddCountRequest: {
    type: 'object',
    required: ['namespace', 'counter_name', 'delta'],
    additionalProperties: false,
    properties: {
      namespace: namespaceName,
      counter_name: counterName,
      delta: {
        type: 'integer',
        minimum: Number.MIN_SAFE_INTEGER,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'May be negative.',
        examples: [2],
      },
      idempotency_token: { $ref: '#/components/schemas/IdempotencyToken' },
    },
  },
  GetCountRequest: {
    type: 'object',
    required: ['namespace', 'counter_name'],
    additionalProperties: false,
    properties: { namespace: namespaceName, counter_name: counterName },
  },
  ClearCountRequest: {
    type: 'object',
    required: ['namespace', 'counter_name'],
    additionalProperties: false,
    properties: {
      namespace: namespaceName,
      counter_name: counterName,
      idempotency_token: { $ref: '#/components/schemas/IdempotencyToken' },
    },
  },
  AddCountsRequest: {
    type: 'object',
    required: ['items'],
    additionalProperties: false,
    properties: {
      items: batchItems(
        'AddCountRequest',
        'Each an AddCountRequest, with its own idempotency_token (optional as in AddCount). An item that is not a ' +
          'valid AddCountRequest fails alone: its result carries the 400.',
      ),
    },
  },
  GetCountsRequest: {
    type: 'object',
    required: ['items'],
    additionalProperties: false,
    properties: {
      items: batchItems(
        'GetCountRequest',
        'Each a GetCountRequest. An item that is not a valid GetCountRequest fails alone: its result carries the 400.',
      ),
    },
  },
  BatchItemError: {
    type: 'object',
    required: ['status', 'error'],
    properties: {
      status: { type: 'integer', minimum: 400, maximum: 599, description: 'What the single call would answer.' },
      error: { $ref: '#/components/schemas/Error/properties/error' },
      idempotency_token: {
        $ref: '#/components/schemas/IdempotencyToken',
        description:
          'The token the server made for an add sent without one: an add that failed with a 5xx may ' +
          'still have been counted, and is safe to send again only with this token.',
      },
      retry_after: { type: 'integer', minimum: 0, description: 'For a 503: seconds to wait, as Retry-After.' },
    },
  },
  AddCountsResponse: {
    type: 'object',
    required: ['results'],
    properties: {
      results: batchResults({
        type: 'object',
        required: ['status', 'idempotency_token'],
        properties: { status: { const: 200 }, idempotency_token: { $ref: '#/components/schemas/IdempotencyToken' } },
      }),
    },
  },
  GetCountsResponse: {
    type: 'object',
    required: ['results'],
    properties: {
      results: batchResults({
        type: 'object',
        required: ['status', 'count'],
        properties: {
          status: { const: 200 },
          count: { type: 'integer' },
          as_of: { $ref: '#/components/schemas/CountResponse/properties/as_of' },
        },
      }),
    },
  },
  MutationResponse: {
    type: 'object',
    required: ['idempotency_token'],
    properties: { idempotency_token: { $ref: '#/components/schemas/IdempotencyToken' } },
  },
  CountResponse: {
    type: 'object',
    required: ['count'],
    properties: {
      count: { type: 'integer' },
      as_of: {
        type: 'string',
        format: 'date-time',
        description:
          'The instant the count is exact for: the rollup time for Eventual reads, the read time for Accurate.',
      },
      idempotency_token: { $ref: '#/components/schemas/IdempotencyToken' },
    },
  },
  NamespaceList: {
    type: 'object',
    required: ['namespaces', 'errors'],
    additionalProperties: false,
    properties: {
      namespaces: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'counter_type', 'ready', 'config'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', pattern: NAMESPACE_NAME_PATTERN },
            counter_type: { type: 'string', enum: [...COUNTER_TYPES] },
            ready: { type: 'boolean', description: 'Whether calls to it are served (its tables exist).' },
            reason: { type: 'string', description: 'Why it is not ready.' },
            kubernetes_namespace: {
              type: 'string',
              description: 'The Kubernetes namespace of its CounterNamespace: where callers are authorized.',
            },
            config: {
              ...namespaceConfigSchema,
              description: 'Its settings: the CounterNamespace resolved, every default filled in.',
            },
          },
        },
      },
      errors: {
        type: 'array',
        items: { type: 'string' },
        description:
          'Configuration documents this process could not load, and why (empty unless the caller may get /v1/namespaces itself).',
      },
    },
  },
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', examples: ['INVALID_ARGUMENT'] },
          message: { type: 'string' },
          field: {
            type: 'string',
            description: 'The request field at fault, dotted (idempotency_token.generation_time).',
          },
        },
      },
    },
  },
} as const;

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/** With authentication on (the chart's default): no valid bearer token, or a token without the right. */
const authErrors = {
  '401': errorResponse(
    'UNAUTHENTICATED: no bearer token, or one the cluster does not accept (WWW-Authenticate: Bearer).',
  ),
  '403': errorResponse(
    'PERMISSION_DENIED: the caller may not do this (the message names the verb and the CounterNamespace: get, update or delete on counternamespaces/counters in its Kubernetes namespace).',
  ),
};

const commonErrors = {
  '400': errorResponse('Malformed JSON, a missing or wrongly typed field, or a value out of bounds.'),
  ...authErrors,
  '404': errorResponse('The namespace is not served here.'),
  '409': errorResponse(
    'COUNT_OUT_OF_RANGE: a BestEffort add would take the count beyond ±(2^53 - 1) (refused, nothing changed), or ' +
      'an Eventual or Accurate counter counts beyond it; ClearCount brings it back. COUNT_CORRUPT: the value stored ' +
      'for a BestEffort counter is not a count (something else wrote its memcached key); ClearCount resets it.',
  ),
  '413': errorResponse('The body is larger than the limit.'),
  '415': errorResponse('The body is compressed (Content-Encoding); send plain JSON.'),
  '503': errorResponse('A store the call needs is unavailable; retry after the Retry-After header (seconds).'),
};

/**
 * A batch answers 200 once its items ran, whatever each item's outcome (per item: 404, 409, 503, ...); only the
 * request as a whole is refused with these. Every other answer of the single calls' (authentication, ...) applies too.
 */
const batchErrors = {
  ...Object.fromEntries(Object.entries(commonErrors).filter(([status]) => !['404', '409'].includes(status))),
  '400': errorResponse(
    `Malformed JSON, no items, more than ${LIMITS.batchMaxItems} items, an item that is not an object, or an unknown field.`,
  ),
  '413': errorResponse(`The body is larger than ${LIMITS.batchBodyMaxBytes} bytes.`),
  '503': errorResponse(
    "Only when the caller's bearer token cannot be checked (the Kubernetes API is unreachable): no item ran. An " +
      "item's 503 is in its result.",
  ),
};

function operation(
  id: string,
  summary: string,
  request: keyof typeof schemas,
  response: keyof typeof schemas,
  errors: Record<string, ReturnType<typeof errorResponse>> = commonErrors,
) {
  return {
    post: {
      operationId: id,
      summary,
      requestBody: {
        required: true,
        content: { 'application/json': { schema: { $ref: `#/components/schemas/${request}` } } },
      },
      responses: {
        '200': {
          description: 'OK',
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${response}` } } },
        },
        ...errors,
      },
    },
  };
}

/**
 * The runtime's OpenAPI 3.1 document. Request validation is compiled from these very schemas (http/validate.ts), so
 * the document and the server cannot drift apart.
 */
/** The body of /readyz: its verdict and each check (cassandra, clock, namespaces, memcached, draining). */
function readiness(status: 'ready' | 'not ready') {
  return {
    type: 'object',
    required: ['status', 'checks'],
    additionalProperties: false,
    properties: {
      status: { const: status },
      checks: {
        type: 'object',
        required: ['cassandra', 'clock', 'namespaces', 'memcached'],
        additionalProperties: {
          type: 'object',
          required: ['ok', 'detail'],
          additionalProperties: false,
          properties: { ok: { type: 'boolean' }, detail: { type: 'string' } },
        },
      },
    },
  } as const;
}

/** The body of /status.json (runtime/http/status-page.ts): what the status page at /status draws. */
const nullableNumber = { type: ['number', 'null'] } as const;
const statusReport = {
  type: 'object',
  required: ['generated_at', 'ready', 'checks', 'clock', 'namespaces', 'config_errors', 'recent_errors'],
  additionalProperties: false,
  properties: {
    generated_at: { type: 'string', format: 'date-time' },
    ready: { type: 'boolean', description: 'As /readyz answers.' },
    checks: readiness('ready').properties.checks,
    clock: {
      type: 'object',
      required: ['offset_seconds', 'uncertainty_seconds'],
      additionalProperties: false,
      description: "Cassandra's clock minus this process's, as last measured, and how far off that may be.",
      properties: { offset_seconds: nullableNumber, uncertainty_seconds: nullableNumber },
    },
    namespaces: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'counter_type', 'keyspace', 'ready', 'requests', 'cache', 'rollup'],
        additionalProperties: false,
        description: 'Each number is null when the metric it is read from is not there.',
        properties: {
          name: { type: 'string', pattern: NAMESPACE_NAME_PATTERN },
          counter_type: { type: 'string', enum: [...COUNTER_TYPES] },
          keyspace: { type: ['string', 'null'], description: 'Null for BestEffort (Memcached only).' },
          ready: { type: 'boolean' },
          reason: { type: 'string', description: 'Why it is not ready.' },
          requests: {
            type: 'object',
            required: ['total', 'client_errors', 'server_errors'],
            additionalProperties: false,
            description: 'Counter API requests since the process started: all, 4xx, 5xx.',
            properties: { total: nullableNumber, client_errors: nullableNumber, server_errors: nullableNumber },
          },
          cache: {
            type: ['object', 'null'],
            required: ['hits', 'misses', 'errors', 'hit_ratio'],
            additionalProperties: false,
            description:
              'Rollup cache lookups of Eventual reads; hit_ratio = hits / (hits + misses). Null for the other types.',
            properties: {
              hits: nullableNumber,
              misses: nullableNumber,
              errors: nullableNumber,
              hit_ratio: nullableNumber,
            },
          },
          rollup: {
            type: ['object', 'null'],
            required: ['lag_p50_seconds', 'lag_p99_seconds', 'rolled', 'queue_depth', 'triggers_dropped'],
            additionalProperties: false,
            description:
              'Rollup lag quantiles estimated from tally_rollup_lag_seconds, checkpoints rolled, counters queued, ' +
              'triggers dropped. Null for BestEffort.',
            properties: {
              lag_p50_seconds: nullableNumber,
              lag_p99_seconds: nullableNumber,
              rolled: nullableNumber,
              queue_depth: nullableNumber,
              triggers_dropped: nullableNumber,
            },
          },
        },
      },
    },
    config_errors: { type: 'array', items: { type: 'string' } },
    recent_errors: {
      type: 'array',
      maxItems: RECENT_ERRORS_KEPT,
      description: 'The last 5xx answers and failed rollups, newest first; a repeat is counted, not listed again.',
      items: {
        type: 'object',
        required: ['time', 'code', 'message', 'count'],
        additionalProperties: false,
        properties: {
          time: { type: 'string', format: 'date-time', description: 'The last time it happened.' },
          count: { type: 'integer', minimum: 1, description: 'How often, since it was first listed.' },
          namespace: { type: 'string' },
          code: { type: 'string', examples: ['UNAVAILABLE', 'ROLLUP_FAILED'] },
          message: { type: 'string' },
        },
      },
    },
  },
} as const;

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Tally counter API',
    version: '1.0.0',
    description:
      "Distributed counters after Netflix's Distributed Counter Abstraction: namespaces of BestEffort, Eventual and Accurate counters.",
  },
  paths: {
    '/v1/counter/AddCount': operation(
      'AddCount',
      'Adds delta (may be negative) to a counter.',
      'AddCountRequest',
      'MutationResponse',
    ),
    '/v1/counter/AddAndGetCount': operation(
      'AddAndGetCount',
      'Adds delta and returns the count after it.',
      'AddCountRequest',
      'CountResponse',
    ),
    '/v1/counter/GetCount': operation('GetCount', "Returns a counter's count.", 'GetCountRequest', 'CountResponse'),
    '/v1/counter/ClearCount': operation('ClearCount', 'Resets a counter to 0.', 'ClearCountRequest', 'CountResponse'),
    '/v1/counter/AddCounts': operation(
      'AddCounts',
      'AddCount for many counters, in any namespaces, in one request: a result per item, in order; an item that fails does not fail the others.',
      'AddCountsRequest',
      'AddCountsResponse',
      batchErrors,
    ),
    '/v1/counter/GetCounts': operation(
      'GetCounts',
      'GetCount for many counters, in any namespaces, in one request: a result per item, in order.',
      'GetCountsRequest',
      'GetCountsResponse',
      batchErrors,
    ),
    '/v1/namespaces/{namespace}/counters/{counter_name}': {
      get: {
        operationId: 'GetCountByPath',
        summary: 'GetCount for curl.',
        parameters: [
          { name: 'namespace', in: 'path', required: true, schema: namespaceName },
          { name: 'counter_name', in: 'path', required: true, schema: counterName },
        ],
        responses: {
          '200': {
            description: 'OK',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/CountResponse' } } },
          },
          ...commonErrors,
        },
      },
    },
    '/v1/namespaces': {
      get: {
        operationId: 'ListNamespaces',
        summary:
          'The namespaces this process serves, with their settings: with authentication on, those whose counters the caller may get, or all for a caller who may get /v1/namespaces (a non-resource URL).',
        responses: {
          '200': {
            description: 'OK',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/NamespaceList' } } },
          },
          '401': authErrors['401'],
        },
      },
    },
    '/healthz': {
      get: {
        summary: 'Liveness.',
        security: [],
        responses: {
          '200': {
            description: 'alive',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['status'],
                  additionalProperties: false,
                  properties: { status: { const: 'ok' } },
                },
              },
            },
          },
        },
      },
    },
    '/readyz': {
      get: {
        security: [],
        summary:
          "Readiness: namespaces loaded and not draining (shutting down); the stores and the clock's offset from Cassandra's are reported in the checks.",
        responses: {
          '200': { description: 'ready', content: { 'application/json': { schema: readiness('ready') } } },
          '503': { description: 'not ready', content: { 'application/json': { schema: readiness('not ready') } } },
        },
      },
    },
    '/status.json': {
      get: {
        summary: 'What the status page (GET /status, HTML) shows: per namespace, the stores and the recent errors.',
        responses: {
          '200': { description: 'OK', content: { 'application/json': { schema: statusReport } } },
          ...authErrors,
        },
      },
    },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics.',
        responses: {
          '200': {
            description: 'The Prometheus text exposition format.',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          ...authErrors,
        },
      },
    },
  },
  // Health and readiness need no token (below: security []), every other call does when authentication is on.
  security: [{ bearer: [] }],
  components: {
    schemas,
    securitySchemes: {
      bearer: {
        type: 'http',
        scheme: 'bearer',
        description:
          "A token the cluster's authenticators accept (a pod's ServiceAccount token), checked with a TokenReview; each call is authorized with a SubjectAccessReview. Not required when the runtime runs with --auth none.",
      },
    },
  },
} as const;

export type SchemaName = keyof typeof schemas;
