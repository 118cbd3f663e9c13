// GB/s of the CUDA reduce kernels beside cudaMemcpy device-to-device on the same card, counting the
// bytes read and written (a reduce reads a and b and writes dst: 3 x the array; a copy 2 x), over
// arrays from 1 MiB to --max-mib (default 1024). Without a device: one line and exit status 2.
//
//   cclab_cuda_kernel_bench [--max-mib N] [--iters N]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cclab/cuda_reduce.h"

namespace {

void check(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return;
  std::fprintf(stderr, "cclab_cuda_kernel_bench: %s: %s\n", what, cudaGetErrorString(error));
  std::exit(1);
}

// Microseconds per call of `body`, the median of five timings of `iters` calls each.
template <class Body>
double time_us(int iters, Body&& body) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  body();  // warm-up
  std::vector<double> timings;
  for (int repeat = 0; repeat < 5; ++repeat) {
    check(cudaEventRecord(start), "cudaEventRecord");
    for (int i = 0; i < iters; ++i) body();
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    timings.push_back(ms * 1e3 / iters);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(timings.begin(), timings.end());
  return timings[timings.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t max_mib = 1024;
  int iters = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--max-mib") == 0) max_mib = std::strtoull(argv[i + 1], nullptr, 10);
    else if (std::strcmp(argv[i], "--iters") == 0) iters = std::atoi(argv[i + 1]);
  }
  if (max_mib < 1 || iters < 1) {
    std::fprintf(stderr, "cclab_cuda_kernel_bench: error: --max-mib and --iters take positive numbers\n");
    return 2;
  }
  int devices = 0;
  if (const cudaError_t error = cudaGetDeviceCount(&devices); error != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "cclab_cuda_kernel_bench: error: no CUDA device (%s)\n",
                 error != cudaSuccess ? cudaGetErrorString(error) : "none found");
    return 2;
  }
  cudaDeviceProp properties{};
  check(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties");
  std::printf("# %s, %d SMs; GB/s count bytes read and written (GB = 10^9 B); median of 5 x %d calls\n",
              properties.name, properties.multiProcessorCount, iters);
  std::printf("%10s %6s %6s %12s %12s %12s %8s\n", "bytes", "type", "op", "reduce_us", "reduce_GBps",
              "memcpy_GBps", "ratio");
  const size_t max_bytes = max_mib << 20;
  void *a = nullptr, *b = nullptr, *dst = nullptr;
  check(cudaMalloc(&a, max_bytes), "cudaMalloc");
  check(cudaMalloc(&b, max_bytes), "cudaMalloc");
  check(cudaMalloc(&dst, max_bytes), "cudaMalloc");
  check(cudaMemset(a, 0x3c, max_bytes), "cudaMemset");
  check(cudaMemset(b, 0x3c, max_bytes), "cudaMemset");
  for (size_t bytes = size_t{1} << 20; bytes <= max_bytes; bytes *= 4) {
    const double copy_us = time_us(iters, [&] { cudaMemcpyAsync(dst, a, bytes, cudaMemcpyDeviceToDevice); });
    const double copy_gbps = 2.0 * double(bytes) / copy_us * 1e-3;
    for (cclab::DataType type : {cclab::DataType::f32, cclab::DataType::bf16, cclab::DataType::f16,
                                 cclab::DataType::f64, cclab::DataType::i32}) {
      const size_t count = bytes / cclab::dtype_size(type);
      const double us = time_us(
          iters, [&] { cclab::cuda::reduce(dst, a, b, count, type, cclab::ReduceOp::sum, 1, nullptr); });
      const double gbps = 3.0 * double(bytes) / us * 1e-3;
      std::printf("%10zu %6s %6s %12.2f %12.1f %12.1f %8.2f\n", bytes, std::string(cclab::dtype_name(type)).c_str(),
                  "sum", us, gbps, copy_gbps, gbps / copy_gbps);
    }
  }
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  cudaFree(a);
  cudaFree(b);
  cudaFree(dst);
  return 0;
}
