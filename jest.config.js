// Two projects: fast unit tests beside the code, and integration tests under test/ that run against the real
// local stack (Cassandra, Memcached, kube-apiserver). The integration project's global setup starts the stack
// when it is not already up and its teardown stops only what it started.
//
// @kubernetes/client-node 1.x and a few of its dependencies ship only ES modules. Node 20 can require() them, but
// jest's module loader cannot, so jest transpiles those packages to CommonJS (cached after the first run). So too
// vega and vega-lite (the bench's plots, test/bench/plot.ts) with the d3 modules and the rest they import.
const esmPackages = [
  '@kubernetes/client-node',
  'openid-client',
  'oauth4webapi',
  'jose',
  'jsonpath-plus',
  'rfc4648',
  'vega',
  'vega-[a-z-]+',
  'd3-[a-z-]+',
  'delaunator',
  'internmap',
  'robust-predicates',
  'json-stringify-pretty-compact',
];
// vega-canvas's Node build awaits at its top level (it tries to import the optional `canvas` package), which no
// CommonJS module can; its browser build does not. Neither finds a canvas here, and SVG needs none.
const moduleNameMapper = { '^vega-canvas$': '<rootDir>/node_modules/vega-canvas/build/vega-canvas.browser.js' };

const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  '^.+\\.m?js$': [
    'ts-jest',
    { tsconfig: { allowJs: true, module: 'commonjs', target: 'ES2022', isolatedModules: true } },
  ],
};
const transformIgnorePatterns = [`/node_modules/(?!(${esmPackages.join('|')})/)`];

/** @type {import('jest').Config} */
module.exports = {
  // In some full runs jest's own process keeps a few timers alive after the global teardown stopped the stack (the
  // teardown prints what is left), and the run would not end for half an hour. Until that is found, jest exits once
  // the results are in.
  forceExit: true,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      roots: [
        '<rootDir>/api',
        '<rootDir>/lib',
        '<rootDir>/store',
        '<rootDir>/runtime',
        '<rootDir>/cli',
        '<rootDir>/client',
        '<rootDir>/test/stack',
        '<rootDir>/test/bench',
        '<rootDir>/operator',
        '<rootDir>/helm',
      ],
      testMatch: ['**/*.test.ts'],
      transform,
      transformIgnorePatterns,
      moduleNameMapper,
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      roots: ['<rootDir>/test/integration'],
      testMatch: ['**/*.test.ts'],
      transform,
      transformIgnorePatterns,
      moduleNameMapper,
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/integration-timeout.ts'],
    },
  ],
};
