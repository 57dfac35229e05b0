#!/bin/bash
# Installs the Debian 12 packages ConvServe needs, if missing.
#   scripts/install-deps.sh build   what building the project needs
#   scripts/install-deps.sh         that, plus what the tests run (the default)
#   scripts/install-deps.sh sanitize  that, plus clang and its sanitizer runtimes
set -euo pipefail

build_packages=(
  cmake ninja-build g++ pkg-config
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev libabsl-dev
  libeigen3-dev libdnnl-dev libspdlog-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libcpp-httplib-dev
)
# Clients in Python and Node (the Python package is built with setuptools,
# wheel and grpc_tools and installed into a venv), the container test
# (debootstrap, podman, buildah), the cluster test's gRPC proxy (nginx) and
# certificates (openssl), the format check, the observability test
# (promtool, from prometheus, checks the alerting rules; python3-yaml reads
# them), and the headless browser that loads the status page (chromium).
test_packages=(
  clang-format python3-numpy nodejs npm
  python3-grpcio python3-protobuf python3-pytest python3-cryptography
  python3-venv python3-setuptools python3-wheel python3-grpc-tools
  debootstrap podman buildah nginx openssl
  prometheus python3-yaml chromium
)
# scripts/sanitize.sh: clang, its sanitizer runtimes (only recommended by
# clang, so named here), LLVM's OpenMP for clang's -fopenmp, and
# llvm-symbolizer (package llvm) for the reports' stacks.
sanitize_packages=(clang libclang-rt-dev libomp-dev llvm)

case "${1:-all}" in
  build) packages=("${build_packages[@]}") ;;
  all) packages=("${build_packages[@]}" "${test_packages[@]}") ;;
  sanitize) packages=("${build_packages[@]}" "${test_packages[@]}" "${sanitize_packages[@]}") ;;
  *) echo "usage: $0 [build|all|sanitize]" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  # NodeSource's nodejs package bundles npm (and conflicts with Debian's).
  [ "$package" = npm ] && command -v npm >/dev/null && continue
  if [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
# Packages with services (nginx, prometheus) must not start them: the tests
# run their own instances, or none. policy-rc.d is Debian's switch for that
# during installs.
policy=/usr/sbin/policy-rc.d
added_policy=""
trap '[ -n "$added_policy" ] && $sudo rm -f "$policy"' EXIT
if [ ! -e "$policy" ]; then
  added_policy=1
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
