#!/bin/bash
# Runs the Node.js examples (conv2d.js, transposed.js) against a real
# convserve-server on a free loopback port; installs the npm dependencies from
# package-lock.json first if needed.
# Usage: run_test.sh SERVER_BIN
set -euo pipefail
server_bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")  # absolute: we cd below
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "node_client: '$tool' not found (scripts/install-deps.sh installs it)"; exit 1; }
done

cd "$here"  # npm works on this folder only: node_modules lands here
if [ ! -d node_modules ]; then
  echo "node_client: installing npm dependencies (npm ci)"
  if ! timeout 240 npm ci --no-audit --no-fund --fetch-retries=2 --fetch-timeout=60000; then
    rm -rf node_modules
    echo "node_client: FAILED: 'npm ci' could not install the dependencies" \
         "(is the npm registry $(npm config get registry 2>/dev/null) reachable?)"
    exit 1
  fi
fi

work=$(mktemp -d)
server_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
source "$repo/tests/start_server.sh"

# Runs the examples against the server started with the given flags; stops it.
run() {
  local label=$1
  shift
  start_server "$work/server.log" "$server_bin" --address 127.0.0.1:0 "$@"
  local status=0 script
  for script in conv2d.js transposed.js; do
    timeout 120 node "$script" "127.0.0.1:$port" || status=$?
    [ "$status" -eq 0 ] || break
  done
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  if [ "$status" -ne 0 ]; then
    echo "node_client: $script failed $label (exit $status); server log:"
    cat "$work/server.log"
    exit "$status"
  fi
}

run "in plaintext"

# Over TLS with a bearer token: a throwaway CA, server certificate and token.
/usr/bin/python3 "$repo/tests/make_test_credentials.py" "$work" node-example conv
CONVSERVE_TLS_CA="$work/ca.pem" CONVSERVE_TOKEN_FILE="$work/token" \
  run "over TLS with a token" --tls-cert "$work/server.pem" --tls-key "$work/server.key" \
  --auth-tokens-file "$work/tokens"
