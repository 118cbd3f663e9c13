#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main benchmark: the hand-written ring allreduce
# beside Open MPI's MPI_Allreduce on 2 local ranks, checked; results in results/allreduce.jsonl,
# and the latest run as a page with charts in results/report.html. Exits as the benchmark did.
set -euo pipefail
cd "$(dirname "$0")/.."
./ci/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p results
status=0
./build/release/cli/cclab bench allreduce -n 2 --impl ring,mpi -b 8 -e 256M -f 4 --check \
  --json results/allreduce.jsonl "$@" || status=$?
if [ -s results/allreduce.jsonl ]; then
  ./build/release/cli/cclab report results/allreduce.jsonl -o results/report.html
  echo "report: results/report.html"
fi
exit $status
