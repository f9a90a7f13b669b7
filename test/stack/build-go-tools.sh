#!/usr/bin/env bash
# Builds the Go-based parts of the local stack from the Go module proxy, once per version:
#   kube-apiserver + kube-controller-manager, etcd, helm; for the node: kubelet + kube-scheduler + kube-proxy,
#   containerd, crictl, CoreDNS.
# Binaries are cached outside the repository under $TALLY_CACHE (default ~/.cache/tally), keyed by version,
# so a second run returns in milliseconds.
#
# usage: build-go-tools.sh kube|etcd|helm|node|containerd|crictl|coredns|all
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
. "$here/versions.sh"

cache=${TALLY_CACHE:-$HOME/.cache/tally}
log() { printf '[stack] %s\n' "$*" >&2; }

# Prints a progress line every 30 s while a long command runs, so a CI log shows it is alive.
with_progress() {
  local what=$1; shift
  local start=$SECONDS next=30
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS - start >= next )); then
      log "$what: still running ($((SECONDS - start)) s)"
      next=$((next + 30))
    fi
  done
  wait "$pid"
}

# kube_build WHAT CMD...: builds the named k8s.io/kubernetes commands into $cache/kube/$KUBE_VERSION/bin, once: each
# target checks its own binaries, so adding the node's commands never rebuilds the API server.
kube_build() {
  local what=$1; shift
  local out="$cache/kube/$KUBE_VERSION/bin" cmd missing=0
  for cmd in "$@"; do [[ -x "$out/$cmd" ]] || missing=1; done
  if (( missing == 0 )); then return 0; fi
  local work="$cache/kube/$KUBE_VERSION/src-$what"
  rm -rf "$work" && mkdir -p "$work" "$out"
  log "building $* $KUBE_VERSION from the Go module proxy (first time only: minutes on 2 cores)"
  cd "$work"
  # k8s.io/kubernetes replaces its staging modules with local paths, which `go build` of a dependency cannot follow.
  # A wrapper module re-points each of them at its published version (v0.X.Y for Kubernetes v1.X.Y), read from
  # Kubernetes' own go.mod so the list stays right for any release.
  local modfile staging_version
  modfile=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging_version="v0.${KUBE_VERSION#v1.}"
  {
    echo "module tally.local/kube-build"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//')"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$modfile" |
      awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >go.mod
  local pkgs=()
  { printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
    printf ')\n'; } >tools.go
  log "$what: resolving modules (go mod tidy)"
  with_progress "$what: go mod tidy" go mod tidy
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  log "$what: compiling (go build)"
  CGO_ENABLED=0 with_progress "$what: go build" go build -trimpath -ldflags "-s -w $ld" -o "$out/" "${pkgs[@]}"
  cd / && rm -rf "$work"
  log "$what: built $out"
}

build_kube() { kube_build kube kube-apiserver kube-controller-manager; }

# The node's Kubernetes commands, from the same source, wrapper module and ldflags as the API server.
build_node() { kube_build node kubelet kube-scheduler kube-proxy; }

# go_install NAME VERSION OUTDIR TAGS LDFLAGS PKG...: `go install PKG@VERSION` of modules without replace directives
# (containerd, cri-tools, CoreDNS), into OUTDIR, once.
go_install() {
  local name=$1 version=$2 out=$3 tags=$4 ld=$5; shift 5
  local pkg missing=0 args=()
  for pkg in "$@"; do [[ -x "$out/$(basename "$pkg")" ]] || missing=1; args+=("$pkg@$version"); done
  if (( missing == 0 )); then return 0; fi
  mkdir -p "$out"
  log "building $name $version from the Go module proxy (first time only: a few minutes)"
  CGO_ENABLED=0 GOBIN="$out" with_progress "$name: go install" \
    go install -trimpath -tags "$tags" -ldflags "-s -w $ld" "${args[@]}"
  log "$name: built $out"
}

# containerd v2 (Kubernetes 1.35 was the last release to support 1.x): the daemon, its runc shim and ctr. CGO off and
# the snapshotters that need C libraries left out; overlayfs is all the node uses.
build_containerd() {
  local m=github.com/containerd/containerd/v2
  go_install containerd "$CONTAINERD_VERSION" "$cache/containerd/$CONTAINERD_VERSION/bin" "no_btrfs no_devmapper no_zfs" \
    "-X $m/version.Version=$CONTAINERD_VERSION" "$m/cmd/containerd" "$m/cmd/containerd-shim-runc-v2" "$m/cmd/ctr"
}

# crictl: `npm run down` removes every pod sandbox through the CRI (containers, CNI teardown, network namespaces).
build_crictl() {
  go_install crictl "$CRICTL_VERSION" "$cache/crictl/$CRICTL_VERSION/bin" "" \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
}

# CoreDNS with its default plugin set (kubernetes among them).
build_coredns() {
  go_install coredns "$COREDNS_VERSION" "$cache/coredns/$COREDNS_VERSION/bin" "" "" github.com/coredns/coredns
}

build_etcd() {
  local out="$cache/etcd/$ETCD_VERSION/bin"
  if [[ -x "$out/etcd" ]]; then return 0; fi
  local work="$cache/etcd/$ETCD_VERSION/src"
  rm -rf "$work" && mkdir -p "$work" "$out"
  log "building etcd $ETCD_VERSION from the Go module proxy (first time only: a few minutes)"
  cd "$work"
  # Kept apart from the Kubernetes wrapper: etcd and Kubernetes pin different versions of shared modules.
  printf 'module tally.local/etcd-build\n\ngo %s\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$(go env GOVERSION | sed 's/^go//')" "$ETCD_VERSION" >go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
  with_progress "etcd: go mod tidy" go mod tidy
  CGO_ENABLED=0 with_progress "etcd: go build" go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
  cd / && rm -rf "$work"
  log "etcd: built $out"
}

build_helm() {
  local out="$cache/helm/$HELM_VERSION/bin"
  if [[ -x "$out/helm" ]]; then return 0; fi
  mkdir -p "$out"
  log "building helm $HELM_VERSION from the Go module proxy (first time only: a few minutes)"
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  # Without these, `helm template` assumes an old Kubernetes and kubeVersion checks misfire.
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  CGO_ENABLED=0 GOBIN="$out" with_progress "helm: go install" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  log "helm: built $out"
}

case "${1:-all}" in
  kube) build_kube ;;
  etcd) build_etcd ;;
  helm) build_helm ;;
  node) build_node ;;
  containerd) build_containerd ;;
  crictl) build_crictl ;;
  coredns) build_coredns ;;
  all) build_etcd; build_helm; build_kube ;;
  *) echo "usage: $0 kube|etcd|helm|node|containerd|crictl|coredns|all" >&2; exit 2 ;;
esac
