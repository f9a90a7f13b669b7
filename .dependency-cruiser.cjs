// The layering rule, checked by `npm run check:layers` (part of `npm test`). Imports only go down:
//
//   cli/                      the `tally` command: the only place that wires the products together
//   runtime/   operator/      data plane and control plane: neither imports the other
//   store/                    the Cassandra keyspace both planes share (connection, CQL, schema and ownership)
//   api/                      the CounterNamespace contract (spec schema, resolution, names, conditions)
//   lib/                      generic machinery with no Tally names in it (Kubernetes client helpers, logging)
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
      from: { path: `^(${layers.join('|')})/`, pathNot: '\\.test\\.ts$' },
      to: { path: '^test/' },
    },
    {
      name: 'no-circular',
      comment: 'a cycle makes two modules one: merge them or move what they share down',
      severity: 'error',
      from: { path: `^(${layers.join('|')})/` },
      to: { circular: true, dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
