# shellcheck shell=bash
# Sourced by the stack's certificate scripts (kube-certs.sh, node-certs.sh, cassandra-certs.sh): ECDSA keys and
# certificates made with openssl in the current directory. LOCAL TEST STACK ONLY: ten-year certificates, no CRLs.

pki_days=3650

# ec_key FILE: an ECDSA P-256 key (generated in milliseconds; understood by Go, kubectl, Node and Java).
ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# make_ca NAME CN: a self-signed CA, NAME.crt and NAME.key.
make_ca() {
  ec_key "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days "$pki_days" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$1.crt"
}

# sign CA NAME SUBJECT EXTENSIONS...: NAME.key and NAME.crt signed by CA.crt / CA.key (CA is a path without the
# extension), with the given v3 extensions. A random serial, so no serial file is shared between scripts.
sign() {
  local ca=$1 name=$2 subject=$3
  shift 3
  ec_key "$name.key"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "$@" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -set_serial "0x1$(openssl rand -hex 15)" \
    -sha256 -days "$pki_days" -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
