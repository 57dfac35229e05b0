#!/bin/bash
# Throwaway TLS material and a bearer token for the local cluster (the
# `cluster` test and compose.yaml). Not for production: use your own CA or
# cert-manager there (deploy/README.md).
#   make-certs.sh OUTDIR [SAN ...]     SANs as openssl writes them: DNS:name, IP:addr
# Writes, laid out like the Kubernetes Secrets the server mounts:
#   OUTDIR/ca/ca.crt, ca.key        the CA (made on the first run, then reused)
#   OUTDIR/tls/tls.crt, tls.key     the server's certificate (for the SANs) and key,
#   OUTDIR/tls/ca.crt               and the CA that verifies it
#   OUTDIR/auth/tokens              --auth-tokens-file: the token's SHA-256, principal
#                                   "client" with every scope
#   OUTDIR/client/token, ca.crt     what a client needs: the token and the CA
# Each run issues a new server key, certificate and token from the same CA, so
# running it again is a rotation. Keys and the token are readable by the owner
# only. Certificates are valid for $DAYS days (default 30). Needs openssl.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [SAN ...]" >&2; exit 2; }
out=$1
shift
sans=("$@")
[ ${#sans[@]} -gt 0 ] || sans=(DNS:convserve DNS:convserve-1 DNS:convserve-2 DNS:convserve-3
                               DNS:localhost IP:127.0.0.1)
days=${DAYS:-30}
if ! command -v openssl >/dev/null; then
  echo "make-certs: openssl not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi

# tls/ and auth/ are what a server mounts: others may enter them (the files in
# them decide who reads what); ca/ and client/ are yours alone.
(umask 022; mkdir -p "$out/tls" "$out/auth")
umask 077
mkdir -p "$out/ca" "$out/client"
# Made next to the outputs, so that moving them in is a rename.
work=$(mktemp -d "$out/.make-certs.XXXXXX")
trap 'rm -rf "$work"' EXIT
serial() { echo "0x$(openssl rand -hex 16)"; }
ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f "$out/ca/ca.key" ]; then
  ec_key "$work/ca.key"
  openssl req -x509 -new -key "$work/ca.key" -subj "/CN=convserve throwaway CA" -days "$days" \
    -set_serial "$(serial)" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$work/ca.crt"
  chmod 644 "$work/ca.crt"
  mv "$work/ca.key" "$work/ca.crt" "$out/ca/"
fi

ec_key "$work/tls.key"
openssl req -new -key "$work/tls.key" -subj "/CN=convserve" -out "$work/tls.csr"
san=$(IFS=,; echo "${sans[*]}")
printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > "$work/ext"
openssl x509 -req -in "$work/tls.csr" -CA "$out/ca/ca.crt" -CAkey "$out/ca/ca.key" \
  -set_serial "$(serial)" -days "$days" -extfile "$work/ext" -out "$work/tls.crt" 2>/dev/null
chmod 644 "$work/tls.crt"

token=$(openssl rand -hex 32)
printf '%s' "$token" > "$work/token"
hash=$(printf '%s' "$token" | openssl dgst -sha256 -r | cut -d' ' -f1)
printf '# <sha256 of the token> <principal> <scopes>\n%s client conv,register,info\n' "$hash" \
  > "$work/tokens"

mv "$work/tls.key" "$work/tls.crt" "$out/tls/"
cp -p "$out/ca/ca.crt" "$out/tls/ca.crt"
cp -p "$out/ca/ca.crt" "$out/client/ca.crt"
mv "$work/tokens" "$out/auth/tokens"
mv "$work/token" "$out/client/token"
echo "make-certs: $out: server certificate for $san, valid $days days; token in $out/client/token"
