#!/bin/bash
# Installs what building needs (CONVSERVE_DEPS=all: what testing needs too),
# then configures and builds everything into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh "${CONVSERVE_DEPS:-build}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build --parallel "$(nproc)"
