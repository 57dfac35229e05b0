#!/bin/bash
# Builds with clang and a sanitizer into build-<name>/ and runs the C++ tests
# under it. Never run: the container image, cluster, Kubernetes manifest,
# Node.js and Python client tests and the format check (slow or system-level,
# and no C++ of ours that the others miss).
#   scripts/sanitize.sh                    AddressSanitizer + UBSan (+ LeakSanitizer):
#                                          unit, conformance, in-process service and
#                                          end-to-end shell tests (real server, CLI,
#                                          perf and load binaries)
#   scripts/sanitize.sh thread             ThreadSanitizer: the tests without gRPC
#                                          traffic (core, oneDNN conformance and
#                                          concurrency, scheduler, call ledger, request
#                                          pipeline, metrics, flags, ...)
# On a 2-core machine address,undefined takes about 30 minutes (half building,
# half testing) and thread about 20.
#
# Why the thread run leaves out every test that starts a gRPC server or client
# (service, client, behaviour, TLS/token tests and the shell tests): Debian's
# gRPC is not instrumented, so TSan cannot see the locks and atomics with which
# gRPC hands a call's memory from one thread to the next, and reports
# thousands of races in gRPC's inline header code, protobuf and the callbacks
# gRPC runs (about 12,000 reports in 66 tests, none of them ours on
# inspection). They cannot be suppressed without suppressing our own frames,
# which gRPC calls. The stream reactor and the RPC handlers are therefore
# covered by ASan/UBSan here, not by TSan; a TSan run of them needs gRPC built
# with -fsanitize=thread. LLVM's OpenMP runtime and oneDNN are not instrumented
# either, but their reports stay inside those libraries and
# tests/sanitizers/tsan.supp ignores them (see there), so the oneDNN tests do
# run under TSan. A test suite added later that starts a server belongs in
# grpc_suites below.
#
# Every sanitizer report, from any process (tests, and the servers the shell
# tests start in the background), goes to build-<name>/sanitizer-logs/; the
# script prints them all and fails if there is any, even when ctest passed.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=${1:-address,undefined}
case "$sanitize" in
  address,undefined | address | undefined | thread) ;;
  *) echo "usage: $0 [address,undefined|thread]" >&2; exit 2 ;;
esac
build="build-${sanitize//,/-}"

scripts/install-deps.sh sanitize

root=$PWD
logs="$root/$build/sanitizer-logs"
supp="$root/tests/sanitizers"
if [ "$sanitize" = thread ]; then
  # The TSan runtime reads UBSAN_OPTIONS too (its log_path would win).
  unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
  export TSAN_OPTIONS="second_deadlock_stack=1:history_size=4:suppressions=$supp/tsan.supp:print_suppressions=0:log_path=$logs/tsan"
else
  unset TSAN_OPTIONS
  export ASAN_OPTIONS="halt_on_error=1:print_stacktrace=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:log_path=$logs/asan"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
fi

# Reports from building (gtest_discover_tests runs each test binary) count too.
rm -rf "$logs"
mkdir -p "$logs"

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCONVSERVE_SANITIZE="$sanitize"
cmake --build "$build" --parallel "$(nproc)"

excluded='^(container_image|cluster|k8s_manifests|node_client|python_client|format_check|stream_load)$'
# GoogleTest suites that run a gRPC server or client, and the shell tests.
grpc_suites='ServiceTest|OneDnnServiceTest|ConvClientTest|BehaviourTest|TlsTest|TokenTest'
shell_tests='cli_end_to_end|server_end_to_end|perf_smoke|status_page_browser'
if [ "$sanitize" = thread ]; then
  excluded="$excluded|^($grpc_suites)\\.|^($shell_tests)\$"
fi
status=0
ctest --test-dir "$build" --output-on-failure --parallel "$(nproc)" -E "$excluded" || status=$?
if [ "$sanitize" != thread ]; then
  # stream_load checks that the server's resident memory returns to its level
  # from before the load; ASan's quarantine of freed memory (256 MiB by
  # default) would fill in between, so that test runs alone with a small one.
  ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=8" \
    ctest --test-dir "$build" --output-on-failure -R '^stream_load$' || status=$?
fi

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  for report in $reports; do
    echo "==== $report"
    cat "$report"
  done
  echo "$(echo "$reports" | wc -l) sanitizer report(s) in $logs" >&2
  exit 1
fi
[ "$status" -eq 0 ] && echo "$sanitize: no sanitizer reports"
exit "$status"
