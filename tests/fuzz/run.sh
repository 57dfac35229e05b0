#!/bin/bash
# Builds the libFuzzer targets of tests/fuzz with clang (-fsanitize=fuzzer,
# address,undefined) in build-fuzz/ and fuzzes each, one after the other, on a
# scratch copy of its committed corpus (tests/fuzz/corpus/<target>, which is
# never changed), then prints how many inputs each ran.
#   tests/fuzz/run.sh                      60 seconds per target (what scripts/test.sh runs)
#   tests/fuzz/run.sh 3600                 an hour per target
#   tests/fuzz/run.sh 600 fuzz_npy         only the targets named
#   FUZZ_RUNS=10000000 tests/fuzz/run.sh 0 ten million inputs per target, no time limit
# Fails when any target crashes, hangs on an input (-timeout), leaks, allocates
# more than 2 GB (-rss_limit_mb, -malloc_limit_mb), hits undefined behaviour
# or breaks one of its own checks. The input that did it is kept in
# build-fuzz/fuzz-findings/<target>/ (crash-*, timeout-*, leak-*, oom-*) with
# the target's log, and reproduces with: build-fuzz/fuzz/<target> <input>
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_conv_request fuzz_register_filter fuzz_npy fuzz_auth)
runs=${FUZZ_RUNS:--1}
if ! [[ "$seconds" =~ ^[0-9]+$ && "$runs" =~ ^-?[0-9]+$ ]]; then
  echo "usage: [FUZZ_RUNS=n] $0 [seconds-per-target] [target...]" >&2
  exit 2
fi

scripts/install-deps.sh sanitize
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCONVSERVE_FUZZ=ON >/dev/null
cmake --build build-fuzz --parallel "$(nproc)" --target "${targets[@]}"

# Every sanitizer report stops the target (libFuzzer then saves the input).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:print_stacktrace=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
findings=build-fuzz/fuzz-findings
status=0
summary=()
for target in "${targets[@]}"; do
  case "$target" in
    fuzz_conv_request | fuzz_register_filter)
      options=(-max_len=16384 -dict=tests/fuzz/conv_request.dict) ;;
    fuzz_npy) options=(-max_len=4096 -dict=tests/fuzz/npy.dict) ;;
    fuzz_auth) options=(-max_len=4096 -dict=tests/fuzz/auth.dict) ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
  esac
  cp -r "tests/fuzz/corpus/$target" "$scratch/$target"
  rm -rf "${findings:?}/$target"
  mkdir -p "$findings/$target"
  log="$findings/$target/fuzz.log"
  echo "== $target: ${seconds}s (0: no limit), runs ${runs} (-1: no limit); log in $log"
  started=$SECONDS
  result=ok
  "build-fuzz/fuzz/$target" "$scratch/$target" "${options[@]}" \
    -max_total_time="$seconds" -runs="$runs" \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=25 \
    -artifact_prefix="$findings/$target/" -print_final_stats=1 >"$log" 2>&1 || result=FAILED
  executions=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  line="$target: ${executions:-?} executions in $((SECONDS - started)) s, $result"
  if [ "$result" != ok ]; then
    status=1
    # The report: everything from the first sanitizer or libFuzzer error on.
    sed -n '/^==[0-9]*==\|runtime error\|fuzz check failed\|ERROR: libFuzzer\|ALARM/,$p' "$log" |
      head -150
    line+=" (inputs in $findings/$target/)"
  fi
  echo "$line"
  summary+=("$line")
done
echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit "$status"
