#!/usr/bin/env bash
# perf_smoke: convserve-perf against the real convserve-server, briefly: a
# closed-loop sweep with both comparisons and an open-loop run; checks the
# exit codes, the ratio lines (medians over rounds, the limit, the mean batch
# size and CPU per request read from the server's metrics) and the CSV/JSON files.
#   perf_smoke_test.sh SERVER_BIN PERF_BIN
set -euo pipefail
server_bin=$1
perf_bin=$2
work=$(mktemp -d)
source "$(dirname "$0")/start_server.sh"
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
start_server "$work/server.log" "$server_bin" --address 127.0.0.1:0 \
  --metrics-address 127.0.0.1:0 --batch-max-size 8

small=(--address "127.0.0.1:$port" --op conv2d --input-shape 1,8,8,4 --filter-shape 3,3,4,4
       --padding SAME --warmup-requests 8 --duration 5)

"$perf_bin" "${small[@]}" --concurrency 1:4:x2 --requests 200 --compare-echo \
  --compare-in-process --in-process-seconds 0.2 --rounds 2 \
  --metrics-url "http://127.0.0.1:$metrics_port/metrics" \
  --csv "$work/out.csv" --json "$work/out.json" | tee "$work/closed.txt"
grep -q "^ratio ours/echo throughput at c=4: [0-9.]* (median of 2 rounds: " "$work/closed.txt"
grep -q "^ratio served/in-process GFLOP/s at c=1: " "$work/closed.txt"
grep -q "^ratio served/limit (in-process compute + echo) at c=2: " "$work/closed.txt"
# Each kernel call takes at least one request.
grep -q "^mean batch size (requests per kernel call) at c=4: [1-9]" "$work/closed.txt"
# The server's CPU time per request, from its process_cpu_seconds_total.
grep -q "^server CPU per request, ours (us) at c=1: [1-9]" "$work/closed.txt"
grep -q "^server CPU per request, echo (us) at c=1: [1-9]" "$work/closed.txt"
grep -q "^ratio server CPU per request ours/echo at c=4: [0-9.]* (median of 2 rounds: " \
  "$work/closed.txt"
[ "$(grep -c '^unary ' "$work/closed.txt")" = 6 ]
[ "$(grep -c '^echo ' "$work/closed.txt")" = 6 ]
[ "$(wc -l < "$work/out.csv")" = 13 ]
grep -q '"ratio_vs_echo"' "$work/out.json"
grep -q '"ratio_vs_limit"' "$work/out.json"
grep -q '"mean_batch"' "$work/out.json"
grep -q '"server_cpu_us"' "$work/out.json"

"$perf_bin" "${small[@]}" --mode stream --registered-filter --rate 400 --arrivals poisson \
  --requests 200 --max-in-flight 8 --compare-echo | tee "$work/open.txt"
grep -q "^stream rate=400 " "$work/open.txt"
grep -q "^ratio ours/echo throughput at rate=400: " "$work/open.txt"

# Bad arguments are refused with a usage error.
if "$perf_bin" --concurrency 4:1:x2 >/dev/null 2>&1; then
  echo "a bad sweep was accepted"
  exit 1
fi
echo "perf_smoke: OK"
