#!/bin/bash
# The Python client's tests against the installed package, as a user gets it:
# a fresh virtual environment on Debian's python3 that sees the system's
# packages (grpcio, protobuf, numpy, pytest, cryptography, and setuptools and
# grpc_tools for the build), client/python installed into it offline (no
# build isolation, no package index), then pytest run from the environment's
# directory, where the source tree is not importable; conftest.py checks that
# convserve came from the environment.
#
#   client/python/tests/installed_test.sh PYTHON VENV_DIR [PYTEST_ARGS...]
#
# VENV_DIR is deleted and created anew. The server is $CONVSERVE_SERVER_BIN
# (see conftest.py). CTest runs this as python_client.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 PYTHON VENV_DIR [PYTEST_ARGS...]" >&2; exit 2; }
python=$1
venv=$2
shift 2
tests=$(cd "$(dirname "$0")" && pwd)
package=$(dirname "$tests")
unset PYTHONPATH

rm -rf "$venv"
"$python" -m venv --system-site-packages "$venv"
venv=$(cd "$venv" && pwd)
"$venv/bin/python" -m pip install --quiet --no-build-isolation --no-index --no-cache-dir \
  --disable-pip-version-check "$package"

# The tests run from the environment's directory: a relative server path
# must not depend on where this was started.
if [ -n "${CONVSERVE_SERVER_BIN:-}" ]; then
  CONVSERVE_SERVER_BIN=$(realpath -m "$CONVSERVE_SERVER_BIN")
  export CONVSERVE_SERVER_BIN
fi
cd "$venv"
export CONVSERVE_INSTALLED_PREFIX="$venv"
"$venv/bin/python" - <<'PY'
import os, pathlib, convserve
module = pathlib.Path(convserve.__file__).resolve()
prefix = pathlib.Path(os.environ["CONVSERVE_INSTALLED_PREFIX"]).resolve()
assert prefix in module.parents, f"convserve imported from {module}, not from {prefix}"
import convserve.v1.convserve_pb2, convserve.health.v1.health_pb2, convserve.aio  # generated and installed
print(f"convserve {convserve.__version__} installed in {module.parent}")
PY
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$tests" "$@"
