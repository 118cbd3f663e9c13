#!/usr/bin/env bash
# The GPU check: one call on a machine with one GPU, under 6 minutes, ending with a summary table.
#
#   ci/gpu-check.sh [BUNDLE]     (default: build/release/gpu-check; or its gpu-check.tar.xz)
#
# A GPU machine may have only the CUDA driver and NVIDIA's Python packages: no compiler, GoogleTest,
# UCX, MPI or oneDNN. So the binaries come built from a development machine (`cmake --preset
# release` with nvcc; architectures 80 and 90) in one folder with the shared libraries they load
# beyond glibc (the build's gpu_check_bundle target, ci/bundle-gpu-check.sh): carry that folder
# along. NCCL, cuDNN and cuBLAS are loaded at run time: from the system, or from NVIDIA's Python
# packages, whose lib folders this script puts on LD_LIBRARY_PATH. What runs:
#   1. the GPU, driver, CUDA and NCCL versions;
#   2. cuda_kernels_test: the CUDA reduce kernels bit for bit against the CPU kernels, every dtype x
#      operator, odd counts and offsets;
#   3. device_gpu_test: NCCL's collectives, and every hand-written algorithm as device plans over
#      NCCL (one rank) and over device-loopback at 2, 3 and 4 ranks on the one GPU, checked;
#   4. trainer_gpu_test: the trainers' GPU layers (cuDNN, cuBLAS, own kernels) against the reference
#      layers, the loss and SGD kernels against the host loops, and 20 LeNet-5 steps whose losses
#      follow the CPU's to 1e-3 (it prints both);
#   5. cclab_cuda_kernel_bench: reduce GB/s beside cudaMemcpy device-to-device, 1 MiB to 1 GiB;
#   6. cclab: info, a `bench allreduce --mem cuda` sweep (NCCL and ring over NCCL, checked), the
#      ring at 4 ranks over device-loopback beside the same sweep on host memory (both checked), and
#      20 LeNet-5 steps with --device cpu and --device cuda on the same seed, losses within 1e-3.
# Logs go to $OUT (or gpu-check-logs/) one file per step.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=${1:-build/release/gpu-check}
if [ -f "$bundle" ]; then  # the packed folder (gpu_check_archive): unpack it beside the logs
  mkdir -p /tmp/cclab-gpu-check && tar -C /tmp/cclab-gpu-check -xJf "$bundle" || exit 2
  bundle=/tmp/cclab-gpu-check/gpu-check
fi
bundle=$(cd "$bundle" && pwd) || exit 2
export LD_LIBRARY_PATH="$bundle${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export UCX_MODULE_DIR="$bundle/ucx"
logs=${OUT:-gpu-check-logs}
mkdir -p "$logs"

declare -a names statuses seconds
step() {  # step NAME TIMEOUT_S COMMAND...: runs it, keeps its log, records the result
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  echo "== $name: $*"
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  tail -n 40 "$logs/$name.log"
  names+=("$name")
  seconds+=($((SECONDS - start)))
  case $rc in
    0) statuses+=("pass") ;;
    124) statuses+=("timeout after ${limit}s") ;;
    *) statuses+=("fail (exit $rc)") ;;
  esac
}

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
nvcc --version 2>/dev/null | tail -n 1 || true
# NCCL, cuDNN and cuBLAS from NVIDIA's Python packages (nvidia-nccl-cu13, nvidia-cudnn-cu13,
# nvidia-cublas), wherever their wheels put them (nvidia/nccl/lib, nvidia/cudnn/lib, nvidia/cu13/lib).
for library in libnccl.so.2 libcudnn.so.9 libcublas.so.13; do
  dir=$(python3 - "$library" 2>/dev/null <<'PY'
import glob, os, sys
import nvidia
for root in nvidia.__path__:
    for found in glob.glob(os.path.join(root, "**", sys.argv[1]), recursive=True):
        print(os.path.dirname(found))
        raise SystemExit
PY
)
  if [ -n "$dir" ] && [ -d "$dir" ]; then
    case ":${LD_LIBRARY_PATH:-}:" in *":$dir:"*) ;; *) export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
    echo "$library from $dir"
  fi
done
python3 -c 'import importlib.metadata as m
for p in ("nvidia-nccl-cu13", "nvidia-cudnn-cu13", "nvidia-cublas"):
    try: print(p, m.version(p))
    except Exception: pass' 2>/dev/null || true

# CCLAB_REQUIRE_GPU: a GPU test fails, rather than skips, when it finds no usable device.
CCLAB_REQUIRE_GPU=1 step kernels_bitwise 120 "$bundle/cuda_kernels_test" --gtest_brief=1
CCLAB_REQUIRE_GPU=1 step device_layer 120 "$bundle/device_gpu_test" --gtest_brief=1
CCLAB_REQUIRE_GPU=1 step trainer_gpu 120 "$bundle/trainer_gpu_test" --gtest_brief=1
step kernel_bandwidth 90 "$bundle/cclab_cuda_kernel_bench" --max-mib 1024 --iters 20
# cclab itself: what it finds, a short sweep on GPU memory (one GPU: one rank), 4 ranks sharing
# the GPU over device-loopback beside 4 ranks on host memory, and LeNet-5 on the GPU beside the CPU
# on the same seed, their step losses compared.
step cclab_info 30 "$bundle/cclab" info
step bench_cuda 120 "$bundle/cclab" bench allreduce --mem cuda -n 1 --impl nccl,ring --transport nccl \
  -b 1M -e 256M -f 4 --iters 20 --check
sweep=(-n 4 --impl ring,tree,rabenseifner -b 1M -e 256M -f 4 --iters 20 --check)
step bench_loopback 120 "$bundle/cclab" bench allreduce "${sweep[@]}" --mem cuda --transport device-loopback
step bench_host 120 "$bundle/cclab" bench allreduce "${sweep[@]}" --mem host
train=(train --model lenet5 --data synthetic:1x28x28:1280 --steps 20 --batch 64 --no-eval --threads 4)
step train_cpu 120 "$bundle/cclab" "${train[@]}" --device cpu --json "$logs/train_cpu.jsonl"
step train_cuda 120 "$bundle/cclab" "${train[@]}" --device cuda --json "$logs/train_cuda.jsonl"
step train_losses 30 python3 -c '
import json, sys
def losses(path):
    return [r for r in map(json.loads, open(path)) if r.get("kind") == "train"][-1]["step_losses"]
cpu, gpu = losses(sys.argv[1]), losses(sys.argv[2])
worst = max(abs(g - c) / abs(c) for c, g in zip(cpu, gpu))
print(f"{len(cpu)} steps: CPU {cpu[0]:.6f} .. {cpu[-1]:.6f}, GPU {gpu[0]:.6f} .. {gpu[-1]:.6f}, worst relative difference {worst:.2e}")
sys.exit(0 if len(cpu) == len(gpu) and worst <= 1e-3 else 1)' "$logs/train_cpu.jsonl" "$logs/train_cuda.jsonl"

echo
echo "== summary"
printf '%-20s %-22s %8s\n' step result seconds
failed=0
for i in "${!names[@]}"; do
  printf '%-20s %-22s %8s\n' "${names[$i]}" "${statuses[$i]}" "${seconds[$i]}"
  [ "${statuses[$i]}" = pass ] || failed=1
done
exit $failed
