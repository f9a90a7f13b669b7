#!/usr/bin/env bash
# Builds the images the local stack's node runs, with no registry and no image tool: each is one static Go binary from
# node-images/ in a one-layer image, written as an image archive (the `docker save` layout: manifest.json, the config,
# layer.tar) that `ctr images import` reads. Cached by the hash of the sources and the Go version, so a second run
# returns at once. Prints the directory holding <name>.tar for each image.
#
# usage: build-node-images.sh
#   pause.tar  tally.local/pause:1  the pod sandbox: waits for a signal and reaps children
#   probe.tar  tally.local/probe:1  the smoke test's workload (serve, get, resolve, kube)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src="$here/node-images"
cache=${TALLY_CACHE:-$HOME/.cache/tally}
key=$( (go env GOVERSION; cd "$src" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16)
out="$cache/node-images/$key"
if [[ -f "$out/.complete" ]]; then echo "$out"; exit 0; fi

echo "[stack] node: building the pause and probe images (once per source change)" >&2
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }

# image NAME REF ENTRYPOINT: builds node-images/NAME into $out/NAME.tar, tagged REF.
image() {
  local name=$1 ref=$2 entry=$3 dir="$work/$1"
  mkdir -p "$dir/rootfs" "$dir/archive"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/rootfs/$name" "./$name")
  # A reproducible layer: sorted, fixed times and owners, so the same sources give the same image ID.
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir/rootfs" -cf "$dir/layer.tar" .
  local layer config
  layer=$(sha "$dir/layer.tar")
  mkdir -p "$dir/archive/$layer"
  mv "$dir/layer.tar" "$dir/archive/$layer/layer.tar"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/%s"],"Env":["PATH=/"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$entry" "$layer" >"$dir/config.json"
  config=$(sha "$dir/config.json")
  mv "$dir/config.json" "$dir/archive/$config.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$config" "$ref" "$layer" \
    >"$dir/archive/manifest.json"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir/archive" -cf "$out/$name.tar" .
}

image pause tally.local/pause:1 pause
image probe tally.local/probe:1 probe
touch "$out/.complete"
echo "$out"
