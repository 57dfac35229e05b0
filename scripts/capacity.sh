#!/bin/bash
# Installs what is missing, builds, and prints deploy/README.md's capacity
# table for this machine: what one replica serves per core for reference
# shapes, and the replicas a target rate needs. Arguments go to
# deploy/capacity.py (e.g. --seconds 10). Keep the machine otherwise idle.
set -euo pipefail
cd "$(dirname "$0")/.."
CONVSERVE_DEPS=all scripts/build.sh  # all: Python runs the measurement
exec /usr/bin/python3 deploy/capacity.py build/bin/convserve-server build/bin/convserve-perf "$@"
