# Versions of every component the local stack installs. One place, read by the shell builders and by the
# TypeScript stack manager (test/stack/versions.ts parses this file), so the cache keys never disagree.
KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.19.5
CASSANDRA_VERSION=5.0.8
