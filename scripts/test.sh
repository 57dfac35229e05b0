#!/bin/bash
# Installs what is missing, builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
CONVSERVE_DEPS=all scripts/build.sh
ctest --test-dir build --output-on-failure --parallel "$(nproc)"
