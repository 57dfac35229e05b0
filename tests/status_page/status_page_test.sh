#!/bin/bash
# The live status page in a real browser: starts convserve-server on loopback
# with its metrics port (plain HTTP; the page shares /metrics' TLS, which
# tests/security_test.cc covers), keeps it under a bounded load with some
# failing calls, and has headless Chromium (check_status_page.py) check that
# the page's plots draw and then update and that the failures are listed.
# Usage: status_page_test.sh SERVER_BIN CLI_BIN LOAD_BIN
set -euo pipefail
server_bin=$1
cli_bin=$2
load_bin=$3
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../start_server.sh"
python=/usr/bin/python3

chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "FAIL: chromium is not installed (scripts/install-deps.sh installs it)"
  exit 1
fi

work=$(mktemp -d)
server_pid="" load_pid=""
cleanup() {
  [ -z "$load_pid" ] || kill "$load_pid" 2>/dev/null || true
  [ -z "$server_pid" ] || kill -9 "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

start_server server.log "$server_bin" --address 127.0.0.1:0 --metrics-address 127.0.0.1:0
[ -n "$metrics_port" ] || { echo "FAIL: no metrics port"; cat server.log; exit 1; }

$python - <<'PY'
import numpy as np
np.save("x.npy", np.ones((1, 4, 4, 1), dtype=np.float32))
np.save("w.npy", np.ones((2, 2, 1, 1), dtype=np.float32))
PY

# Bounded load: at most 150 rounds and 120 s, each a short burst of streamed
# requests and one call that fails (strides in the batch dimension:
# INVALID_ARGUMENT), so that throughput, latency and recent errors all show.
load() {
  local end=$((SECONDS + 120))
  for _ in $(seq 150); do
    [ "$SECONDS" -lt "$end" ] || break
    "$load_bin" --address "127.0.0.1:$port" --streams 2 --requests 20 >/dev/null 2>&1 ||
      echo "a load round failed" >&2
    "$cli_bin" --address "127.0.0.1:$port" --timeout 10 conv2d --input x.npy --filter w.npy \
      --padding VALID --strides 2,1,1,1 --output bad.npy >/dev/null 2>&1 || true
    sleep 0.3
  done
}
load &
load_pid=$!

status=0
timeout 180 "$python" "$here/check_status_page.py" "$chromium" \
  "http://127.0.0.1:$metrics_port/" || status=$?
if [ "$status" -ne 0 ]; then
  echo "FAIL: the status page check failed (exit $status); server log:"
  tail -20 server.log
  exit 1
fi
kill "$load_pid" 2>/dev/null || true
load_pid=""
kill -TERM "$server_pid"
wait "$server_pid" || { echo "FAIL: the server did not stop cleanly"; exit 1; }
server_pid=""
echo "status_page: all checks passed"
