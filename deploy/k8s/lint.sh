#!/bin/bash
# Lints the manifests in this folder offline: Kubernetes schemas (unknown
# fields included) and consistency with each other and with the flags of the
# given server binary; broken variants must fail. Installs the npm dependencies
# from lint/package-lock.json first if needed (the only network use).
# Usage: lint.sh SERVER_BIN
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 SERVER_BIN" >&2; exit 2; }
server_bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")  # absolute: we cd below
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$server_bin" ] || { echo "k8s_lint: FAILED: $1 is not an executable"; exit 1; }

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "k8s_lint: '$tool' not found (scripts/install-deps.sh installs it)"; exit 1; }
done

cd "$here/lint"  # npm works on this folder only: node_modules lands here
# npm ci writes node_modules/.package-lock.json last: without it the tree is
# missing or half installed.
if [ ! -f node_modules/.package-lock.json ]; then
  echo "k8s_lint: installing npm dependencies (npm ci)"
  if ! timeout 240 npm ci --no-audit --no-fund --fetch-retries=2 --fetch-timeout=60000; then
    rm -rf node_modules
    echo "k8s_lint: FAILED: 'npm ci' could not install the dependencies" \
         "(is the npm registry $(npm config get registry 2>/dev/null) reachable?)"
    exit 1
  fi
fi

exec node lint.mjs "$here" "$server_bin"
