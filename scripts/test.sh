#!/bin/bash
# Installs what is missing, builds, and runs every test: ctest, then a minute
# of libFuzzer on each fuzz target (tests/fuzz/run.sh, its own build-fuzz/).
# Exits non-zero if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
CONVSERVE_DEPS=all scripts/build.sh
status=0
ctest --test-dir build --output-on-failure --parallel "$(nproc)" || status=$?
tests/fuzz/run.sh 60 || status=1
exit "$status"
