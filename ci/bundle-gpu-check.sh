#!/usr/bin/env bash
# Gathers what ci/gpu-check.sh runs into one folder that travels to a GPU machine on its own:
#
#   ci/bundle-gpu-check.sh OUT_DIR BINARY...     copy the binaries and the libraries they load
#   ci/bundle-gpu-check.sh --verify OUT_DIR      check that the folder holds every one of them
#   ci/bundle-gpu-check.sh --archive OUT_DIR     OUT_DIR.tar.xz of it, small enough to carry
#
# Copies each binary and every shared library it loads except glibc's own (a GPU machine's image
# has glibc, the CUDA driver and NVIDIA's Python packages, but not Debian's UCX, Open MPI, hwloc or
# OpenMP runtime, which the test binaries link). gpu-check.sh puts the folder on LD_LIBRARY_PATH, so
# the copied libraries also find each other. CUDA's libraries (NCCL, cuDNN, cuBLAS) are loaded at
# run time from the machine's own packages and are not copied.
set -euo pipefail

# "SONAME PATH" of every library BINARY loads that is not glibc's.
libraries_beyond_glibc() {
  ldd "$1" | awk '$2 == "=>" {print $1, $3}' | while read -r soname path; do
    case $soname in
      libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | ld-linux*) ;;
      *) echo "$soname $path" ;;
    esac
  done
}

if [ "${1:-}" = --archive ]; then
  tar -C "$(dirname "$2")" -cf - "$(basename "$2")" | xz -T0 -6 >"$2.tar.xz.part"
  mv "$2.tar.xz.part" "$2.tar.xz"
  exit 0
fi

if [ "${1:-}" = --verify ]; then
  dir=$(cd "$2" && pwd)
  missing=0
  for binary in "$dir"/*; do
    [ -f "$binary" ] && [ -x "$binary" ] && [ "${binary##*.so.*}" = "$binary" ] || continue
    while read -r soname path; do
      if [ "$path" != "$dir/$soname" ]; then
        echo "$(basename "$binary"): $soname resolves to $path, not to the bundle"
        missing=1
      fi
    done < <(LD_LIBRARY_PATH="$dir" libraries_beyond_glibc "$binary")
  done
  exit $missing
fi

out=$1
shift
mkdir -p "$out"
for binary in "$@"; do
  cp -f "$binary" "$out/"
  libraries_beyond_glibc "$binary" | while read -r soname path; do
    cp -fL "$path" "$out/$soname"
    # UCX loads its transports (cma, ib, ...) as modules from beside libucs; gpu-check.sh points
    # UCX_MODULE_DIR at this copy.
    if [ "$soname" = libucs.so.0 ] && [ -d "$(dirname "$path")/ucx" ]; then
      mkdir -p "$out/ucx"
      for module in "$(dirname "$path")"/ucx/*.so.0; do cp -fL "$module" "$out/ucx/"; done
    fi
  done
done
