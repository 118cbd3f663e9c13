#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit and multi-process).
set -euo pipefail
cd "$(dirname "$0")/.."
./ci/build.sh
# Open MPI refuses root unless told; CI machines run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --preset release -j 2 "$@"
