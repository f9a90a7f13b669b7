#!/usr/bin/env bash
# Makes the certificates and keys the local kube-apiserver and kube-controller-manager need, with openssl, once per
# directory: a second run with everything in place returns at once, so the API server keeps its CA across restarts
# and kubeconfigs written earlier stay valid.
#
# usage: kube-certs.sh DIR
#
#   ca.crt ca.key                      the cluster CA (signs everything below; the API server's --client-ca-file)
#   apiserver.crt apiserver.key        serving cert, SANs 127.0.0.1, localhost, 10.0.0.1 (first IP of 10.0.0.0/24)
#   admin.crt admin.key                client cert CN=tally-admin, O=system:masters (cluster-admin by group)
#   controller-manager.crt/.key        client cert CN=system:kube-controller-manager (its bootstrap RBAC user)
#   sa.key sa.pub                      RSA key pair that signs and verifies service-account tokens
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

dir=${1:?usage: kube-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
# Written last: its presence means every file above is complete.
if [[ -f .complete ]]; then exit 0; fi

echo "[stack] kube: making certificates in $dir (once)" >&2
tmp=$(mktemp -d "$dir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
umask 077

# shellcheck source-path=SCRIPTDIR source=pki.sh
. "$here/pki.sh"
make_ca ca tally-local-kubernetes-ca

sign ca apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" \
  "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign ca admin "/O=system:masters/CN=tally-admin" "extendedKeyUsage=clientAuth"
sign ca controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
openssl pkey -in sa.key -pubout -out sa.pub

mv -f ./*.crt ./*.key sa.pub "$dir/"
touch "$dir/.complete"
