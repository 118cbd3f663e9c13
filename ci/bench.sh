#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main benchmark: the hand-written ring allreduce
# beside Open MPI's MPI_Allreduce on 2 local ranks, checked; results in results/allreduce.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
./ci/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p results
exec ./build/release/cli/cclab bench allreduce -n 2 --impl ring,mpi -b 8 -e 256M -f 4 --check \
  --json results/allreduce.jsonl "$@"
