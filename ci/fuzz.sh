#!/usr/bin/env bash
# Builds the libFuzzer targets of the readers of user files and flags (tests/fuzz, in build/fuzz with
# clang) and runs each for a bounded time from a copy of its seed corpus (tests/fuzz/corpus/TARGET),
# so the committed corpus never grows. Any crash, sanitizer report, leak, timeout or out-of-memory
# fails the script; the input that caused it is kept under build/fuzz/findings/. docs/fuzzing.md.
#
#   ci/fuzz.sh [--seconds N] [TARGET...]    TARGET: idx checkpoint profile jsonl flags (default: all)
#
# N defaults to CCLAB_FUZZ_SECONDS, else 20 seconds per target.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."

all_targets=(idx checkpoint profile jsonl flags)
seconds="${CCLAB_FUZZ_SECONDS:-20}"
targets=()
while (($# > 0)); do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *)
      [[ " ${all_targets[*]} " == *" $1 "* ]] || { echo "fuzz.sh: no target '$1' (${all_targets[*]})" >&2; exit 2; }
      targets+=("$1"); shift ;;
  esac
done
if [[ ! "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: --seconds takes a whole number above 0, not '$seconds'" >&2
  exit 2
fi
((${#targets[@]} > 0)) || targets=("${all_targets[@]}")

build=build/fuzz
# The fuzz build compiles only the readers' sources; CCLAB_CUDA=OFF keeps nvcc out of it regardless.
CC=clang CXX=clang++ cmake -S . -B "$build" -DCCLAB_FUZZ=ON -DCCLAB_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  --no-warn-unused-cli >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

# The harnesses that hand a reader a path rewrite one file per input: in memory (/dev/shm) where
# there is one, since a disk file system may flush a truncated file's data at each close.
scratch="${TMPDIR:-/tmp}"
[[ -d /dev/shm && -w /dev/shm ]] && scratch=/dev/shm
work=$(mktemp -d "$scratch/cclab-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
findings="$build/findings"  # this run's, for the record of a failed CI job
rm -rf "$findings"
failed=()
for target in "${targets[@]}"; do
  dir="$work/$target"
  mkdir -p "$dir/corpus"
  cp tests/fuzz/corpus/"$target"/* "$dir/corpus/"
  dictionary=()
  [[ -f tests/fuzz/$target.dict ]] && dictionary=(-dict="tests/fuzz/$target.dict")
  started=$SECONDS
  status=0
  # -timeout: seconds one input may take; the memory limits make a reader that allocates what a
  # header claims fail here rather than on a user's machine.
  TMPDIR="$dir" UBSAN_OPTIONS=print_stacktrace=1 "$build/tests/fuzz/fuzz_$target" "$dir/corpus" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 "${dictionary[@]}" \
    -print_final_stats=1 -artifact_prefix="$dir/" >"$dir/log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
  line=$(printf 'fuzz_%-11s %10s execs  %4d s' "$target" "${execs:-?}" "$((SECONDS - started))")
  artifacts=("$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*)
  if ((status == 0)) && ((${#artifacts[@]} == 0)); then
    echo "$line  clean"
    continue
  fi
  failed+=("fuzz_$target")
  mkdir -p "$findings"
  kept=()
  for artifact in "${artifacts[@]}"; do
    cp "$artifact" "$findings/fuzz_${target}-$(basename "$artifact")"
    kept+=("$findings/fuzz_${target}-$(basename "$artifact")")
  done
  echo "$line  FAILED (exit $status): ${kept[*]:-no input saved}"
  cp "$dir/log" "$findings/fuzz_$target.log"
  grep -E -m 20 'ERROR|SUMMARY|runtime error|deadly signal|terminate|what\(\)' "$dir/log" | sed 's/^/    /' || true
  echo "    log: $findings/fuzz_$target.log"
  for input in "${kept[@]}"; do echo "    reproduce: $build/tests/fuzz/fuzz_$target $input"; done
done
if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: findings in ${failed[*]}" >&2
  exit 1
fi
