#!/bin/bash
# The packages an image's runtime stage installs, derived rather than kept by
# hand (the Dockerfile's build stages run it): every shared library the
# binaries load (ldd), and each library named with --dlopen (loaded at run
# time with dlopen, which ldd cannot see; found through the loader's cache),
# mapped to the package that ships it (dpkg -S).
# Writes, in OUT_DIR:
#   runtime-packages.txt  Debian's packages, by name: the runtime stage
#                         installs the archive's current version;
#   nvidia-packages.txt   NVIDIA's packages (CUDA and cuDNN from NVIDIA's
#                         repository: maintainer cudatools@nvidia.com; Debian's
#                         main archive has none), as name=version, so
#                         that the runtime stage installs exactly what the
#                         binaries were built against; empty for a CPU build;
#   ldd.txt               what ldd said.
# Usage: runtime-packages.sh OUT_DIR [--dlopen SONAME]... BINARY...
set -eu
usage() { echo "usage: $0 OUT_DIR [--dlopen SONAME]... BINARY..." >&2; exit 2; }
[ $# -ge 2 ] || usage
out=$1
shift
dlopen=()
while [ "${1:-}" = --dlopen ]; do
  [ $# -ge 3 ] || usage
  dlopen+=("$2")
  shift 2
done
[ $# -ge 1 ] || usage

ldd "$@" >"$out/ldd.txt"
if grep 'not found' "$out/ldd.txt"; then exit 1; fi
libs=$(awk '$2 == "=>" && $3 ~ /^\// {print $3}  $1 ~ /^\// && $2 ~ /^\(/ {print $1}' "$out/ldd.txt")
for soname in ${dlopen[@]+"${dlopen[@]}"}; do
  path=$(ldconfig -p | awk -v s="$soname" '$1 == s {print $NF; exit}')
  [ -n "$path" ] || { echo "--dlopen $soname: not in the loader's cache (ldconfig -p)" >&2; exit 1; }
  libs="$libs"$'\n'"$path"
done

: >"$out/runtime-packages.txt.all"
: >"$out/nvidia-packages.txt.all"
# Debian 12 is mid-/usr-merge, so a library ldd finds under /lib may be
# registered under /usr/lib, or the other way round: try both spellings (and
# the file a symlink, e.g. one of update-alternatives, points to).
for lib in $(printf '%s\n' "$libs" | sort -u); do
  package=""
  for path in "$lib" "${lib#/usr}" "/usr$lib" "$(readlink -f "$lib")"; do
    package=$(dpkg -S "$path" 2>/dev/null | grep -v '^diversion' | head -1 | cut -d: -f1 || true)
    [ -z "$package" ] || break
  done
  [ -n "$package" ] || { echo "no package ships $lib" >&2; exit 1; }
  case "$(dpkg-query -W -f='${Maintainer}' "$package")" in
    *[Nn][Vv][Ii][Dd][Ii][Aa]*|*cudatools*) dpkg-query -W -f='${Package}=${Version}\n' "$package" >>"$out/nvidia-packages.txt.all" ;;
    *) echo "$package" >>"$out/runtime-packages.txt.all" ;;
  esac
done
for list in runtime-packages nvidia-packages; do
  sort -u "$out/$list.txt.all" >"$out/$list.txt"
  rm "$out/$list.txt.all"
  echo "$list.txt:"
  sed 's/^/  /' "$out/$list.txt"
done
