// The CUDA reduce kernels against the CPU kernels, bit for bit (a NaN result as NaN:
// first_difference says why): every dtype x operator, odd counts,
// element offsets that leave the buffers at different distances from a 16-byte boundary (the
// vector path, the scalar head and tail, the all-scalar path), and dst aliasing a. Needs a GPU;
// without one every test skips and says why (or fails, under CCLAB_REQUIRE_GPU).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cclab/cuda_reduce.h"
#include "cclab/reduce.h"
#include "reduce_inputs.h"

namespace cclab {
namespace {

// Why there is no usable device, or "" when there is one.
std::string no_device_reason() {
  int devices = 0;
  const cudaError_t error = cudaGetDeviceCount(&devices);
  if (error != cudaSuccess) return std::string("no CUDA device: ") + cudaGetErrorString(error);
  return devices == 0 ? "no CUDA device" : "";
}

class CudaKernels : public ::testing::Test {
 protected:
  // Without a device the tests skip, or fail where CCLAB_REQUIRE_GPU is set (ci/gpu-check.sh).
  void SetUp() override {
    const std::string reason = no_device_reason();
    if (reason.empty()) return;
    if (std::getenv("CCLAB_REQUIRE_GPU") != nullptr) FAIL() << reason;
    GTEST_SKIP() << reason;
  }

  // Device buffer holding `bytes` at byte offset `offset`.
  struct DeviceArray {
    std::byte* base = nullptr;
    size_t offset = 0;
    DeviceArray(const std::vector<std::byte>& bytes, size_t offset_bytes) : offset(offset_bytes) {
      EXPECT_EQ(cudaMalloc(&base, bytes.size() + offset + 16), cudaSuccess);
      EXPECT_EQ(cudaMemcpy(base + offset, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), cudaSuccess);
    }
    ~DeviceArray() { cudaFree(base); }
    std::byte* data() const { return base + offset; }
    std::vector<std::byte> read(size_t bytes) const {
      std::vector<std::byte> host(bytes);
      EXPECT_EQ(cudaMemcpy(host.data(), data(), bytes, cudaMemcpyDeviceToHost), cudaSuccess);
      return host;
    }
  };
};

TEST_F(CudaKernels, ReduceEqualsTheCpuKernelsBitForBit) {
  for (DataType type : kAllDataTypes)
    for (ReduceOp op : kAllReduceOps)
      for (size_t count : {size_t{1}, size_t{7}, size_t{4099}, size_t{65537}})
        for (size_t offset : {0, 1, 3}) {
          const int divisor = op == ReduceOp::avg ? 3 : 1;
          const size_t size = dtype_size(type), bytes = count * size;
          const auto a = reduce_inputs(type, count, uint32_t(count + offset)), b = reduce_inputs(type, count, 7);
          std::vector<std::byte> expected(bytes);
          reduce(expected.data(), a.data(), b.data(), count, type, op, divisor);
          // Out of place with a, b, dst at different offsets; in place into a at equal offsets.
          DeviceArray device_a(a, offset * size), device_b(b, 0), device_dst(a, 2 * offset * size);
          cuda::reduce(device_dst.data(), device_a.data(), device_b.data(), count, type, op, divisor, nullptr);
          DeviceArray aligned_a(a, offset * size), aligned_b(b, offset * size);
          cuda::reduce(aligned_a.data(), aligned_a.data(), aligned_b.data(), count, type, op, divisor, nullptr);
          ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
          const std::string what = std::string(dtype_name(type)) + " " + std::string(op_name(op)) + " count " +
                                   std::to_string(count) + " offset " + std::to_string(offset);
          EXPECT_EQ(first_difference(type, device_dst.read(bytes).data(), expected.data(), count), count)
              << what << " out of place";
          EXPECT_EQ(first_difference(type, aligned_a.read(bytes).data(), expected.data(), count), count)
              << what << " in place";
        }
}

TEST_F(CudaKernels, DivideEqualsTheCpuDivide) {
  for (DataType type : kAllDataTypes) {
    const size_t count = 4099;
    auto expected = reduce_inputs(type, count, 11);
    DeviceArray device(expected, dtype_size(type));
    divide(expected.data(), count, type, 6);
    cuda::divide(device.data(), count, type, 6, nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(first_difference(type, device.read(expected.size()).data(), expected.data(), count), count)
        << dtype_name(type);
  }
}

}  // namespace
}  // namespace cclab
