#!/usr/bin/env bash
# Makes the certificates the single node needs, signed by the cluster CA that kube-certs.sh made in the same directory,
# once per directory (marker .node-complete; kube-certs.sh's own files are left as they are).
#
# usage: node-certs.sh DIR NODE_NAME BRIDGE_IP
#
#   apiserver-node.crt/.key        API server serving cert: kube-certs.sh's SANs plus BRIDGE_IP, where the API server
#                                  listens when the node runs (pods reach it there through the `kubernetes` Service)
#   kubelet-client.crt/.key        the API server's client cert towards the kubelet (logs, exec, port-forward)
#   kubelet.crt/.key               the kubelet's client cert: system:node:NODE_NAME in system:nodes (Node authorizer)
#   kubelet-serving.crt/.key       the kubelet's serving cert, SAN BRIDGE_IP (the API server verifies it)
#   kube-scheduler.crt/.key        system:kube-scheduler (bootstrap RBAC)
#   kube-proxy.crt/.key            system:kube-proxy (bound to system:node-proxier by bootstrap RBAC)
#   coredns.crt/.key               tally:coredns (the ClusterRole the dns component applies)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

dir=${1:?usage: node-certs.sh DIR NODE_NAME BRIDGE_IP}
node=${2:?usage: node-certs.sh DIR NODE_NAME BRIDGE_IP}
ip=${3:?usage: node-certs.sh DIR NODE_NAME BRIDGE_IP}
cd "$dir"
[[ -f .complete ]] || { echo "[stack] node-certs: $dir has no cluster CA (run kube-certs.sh first)" >&2; exit 1; }
# The marker names what the certificates were made for: another node name or address makes them again.
marker="$node $ip"
if [[ -f .node-complete && $(cat .node-complete) == "$marker" ]]; then exit 0; fi

echo "[stack] node: making certificates in $dir (once)" >&2
tmp=$(mktemp -d "$dir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
umask 077
# shellcheck source-path=SCRIPTDIR source=pki.sh
. "$here/pki.sh"

sign "$dir/ca" apiserver-node "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" \
  "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,IP:$ip,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign "$dir/ca" kubelet-client "/CN=tally:kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
sign "$dir/ca" kubelet "/O=system:nodes/CN=system:node:$node" "extendedKeyUsage=clientAuth"
sign "$dir/ca" kubelet-serving "/O=system:nodes/CN=system:node:$node" "extendedKeyUsage=serverAuth" "subjectAltName=IP:$ip,DNS:$node"
sign "$dir/ca" kube-scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
sign "$dir/ca" kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
sign "$dir/ca" coredns "/CN=tally:coredns" "extendedKeyUsage=clientAuth"

mv -f ./*.crt ./*.key "$dir/"
echo "$marker" >"$dir/.node-complete"
