#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit and multi-process); then the readers'
# fuzz targets for a short time each (ci/fuzz.sh; CCLAB_FUZZ_TESTS=0 skips them, CCLAB_FUZZ_SECONDS
# sets the time); then the trainers' tests again under AddressSanitizer and UBSan (the asan preset;
# CCLAB_ASAN_TESTS=0 skips them).
set -euo pipefail
cd "$(dirname "$0")/.."
./ci/build.sh
# Open MPI refuses root unless told; CI machines run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --preset release -j 2 "$@"
if [ "${CCLAB_FUZZ_TESTS:-1}" != 0 ]; then
  ./ci/fuzz.sh --seconds "${CCLAB_FUZZ_SECONDS:-15}"
fi
if [ "${CCLAB_ASAN_TESTS:-1}" != 0 ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$(nproc)" --target trainer_tests
  ctest --preset asan -j 2 -L trainer "$@"
fi
