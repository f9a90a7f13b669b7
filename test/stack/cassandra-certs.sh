#!/usr/bin/env bash
# Makes the certificates the local Cassandra serves CQL with, once per directory and address list: a second run with
# the same addresses returns at once, so clients keep trusting the same CA across restarts.
#
# usage: cassandra-certs.sh DIR ADDRESS...
#
#   ca.crt ca.key        the stack's Cassandra CA (what clients verify against: CASSANDRA_CA_FILE in .tally/env)
#   server.crt .key      Cassandra's serving certificate, SANs localhost and every ADDRESS (IPv4)
#   keystore.p12         server.key + server.crt as the PKCS#12 keystore Cassandra reads (client_encryption_options)
#   keystore.password    its password (random; the keystore is only as private as this directory)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
usage="usage: cassandra-certs.sh DIR ADDRESS..."
dir=${1:?$usage}
shift
(($# > 0)) || { echo "$usage" >&2; exit 2; }
sans="DNS:localhost"
for ip in "$@"; do
  [[ "$ip" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || { echo "cassandra-certs.sh: not an IPv4 address: $ip" >&2; exit 2; }
  sans+=",IP:$ip"
done
mkdir -p "$dir"
cd "$dir"
# Written last, naming what the certificates were made for: other addresses make them again (with a new CA).
if [[ -f .complete && $(cat .complete) == "$sans" ]]; then exit 0; fi

echo "[stack] cassandra: making TLS certificates in $dir for $sans" >&2
tmp=$(mktemp -d "$dir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
umask 077
# shellcheck source-path=SCRIPTDIR source=pki.sh
. "$here/pki.sh"

make_ca ca tally-local-cassandra-ca
sign ca server "/CN=tally-local-cassandra" "extendedKeyUsage=serverAuth" "subjectAltName=$sans"
openssl rand -hex 24 >keystore.password
openssl pkcs12 -export -name cassandra -inkey server.key -in server.crt -certfile ca.crt \
  -passout "file:keystore.password" -out keystore.p12

mv -f ca.crt ca.key server.crt server.key keystore.p12 keystore.password "$dir/"
# The CA is public: clients (and the pods' Secret) read it.
chmod 0644 "$dir/ca.crt"
echo "$sans" >"$dir/.complete"
