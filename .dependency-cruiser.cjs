// The layering rule, checked by `npm run check:layers` (part of `npm test`). Imports only go down:
//
//   cli/                      the `tally` command: the only place that wires the products together
//   runtime/   operator/      data plane and control plane: neither imports the other
//   store/                    the Cassandra keyspace both planes share (connection, CQL, schema and ownership)
//   api/                      the CounterNamespace contract (spec schema, resolution, names, conditions)
//   lib/                      generic machinery with no Tally names in it (Kubernetes client helpers, logging)
//
//   client/src/               the TypeScript client, its own npm package: imports only itself and Node's built-ins
//                             (no repository code, no dependencies); only cli/ and test/ import it
//
// test/ and the chart's tests may import anything; nothing outside test/ may import test/.
const layers = ['lib', 'api', 'store', 'runtime', 'operator', 'cli'];
/** What each layer may import besides itself. */
const allowed = {
  lib: [],
  api: ['lib'],
  store: ['lib', 'api'],
  runtime: ['lib', 'api', 'store'],
  operator: ['lib', 'api', 'store'],
  cli: ['lib', 'api', 'store', 'runtime', 'operator'],
};

const forbidden = layers.map((layer) => {
  const others = layers.filter((l) => l !== layer && !allowed[layer].includes(l));
  return {
    name: `${layer}-imports-only-down`,
    comment: `${layer}/ may import only ${allowed[layer].map((l) => `${l}/`).join(', ') || 'itself'} (see .dependency-cruiser.cjs)`,
    severity: 'error',
    from: { path: `^${layer}/` },
    to: { path: `^(${others.join('|')})/` },
  };
});

module.exports = {
  forbidden: [
    ...forbidden,
    {
      name: 'product-imports-no-test-code',
      comment: 'shipped code must not depend on test/ (the images carry no tests)',
      severity: 'error',
      from: { path: `^(${layers.join('|')}|client)/`, pathNot: '\\.test\\.ts$' },
      to: { path: '^test/' },
    },
    {
      name: 'client-is-standalone',
      comment:
        'client/src/ is published on its own: it may import only client/src/ and Node built-ins (its types are generated from the OpenAPI document by client/scripts/)',
      severity: 'error',
      from: { path: '^client/src/' },
      to: { pathNot: '^client/src/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'only-cli-imports-client',
      comment: 'the client is for callers of the API: of the product folders only cli/ uses it',
      severity: 'error',
      from: { path: `^(${layers.filter((l) => l !== 'cli').join('|')})/` },
      to: { path: '^client/' },
    },
    {
      name: 'no-circular',
      comment: 'a cycle makes two modules one: merge them or move what they share down',
      severity: 'error',
      from: { path: `^(${layers.join('|')}|client)/` },
      to: { circular: true, dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    // Packages are not followed but stay in the graph, so that client-is-standalone sees an import of one.
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|client/dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
