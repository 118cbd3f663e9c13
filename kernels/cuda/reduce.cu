// CUDA reduce kernels. One grid-stride kernel per (element type, operator): where dst, a and b sit
// at the same offset from a 16-byte boundary, the bulk moves in 16-byte vectors (after a scalar
// head up to the boundary) and a scalar tail follows; otherwise every element is scalar. Elements
// are combined by the element descriptions of cclab/reduce_operators.h (Native, Half, BFloat),
// whose operators and 16-bit conversions are the CPU kernels':
// f16 and bf16 are computed in f32 and rounded once, integers wrap, min/max propagate NaN, and
// averages divide in the CPU's types. Built with --fmad=false, so no multiply-add is contracted
// into an FMA that the CPU does not do.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cclab/cuda_reduce.h"
#include "cclab/reduce_operators.h"

namespace cclab::cuda {
namespace {

namespace ops = reduce_operators;

constexpr size_t kVectorBytes = 16;
constexpr int kThreads = 256;

template <class Storage>
struct alignas(kVectorBytes) Vector {
  static constexpr size_t kLanes = kVectorBytes / sizeof(Storage);
  Storage lanes[kLanes];
};

// Elements [0, head) and [tail, count) one at a time, [head, tail) as vectors (tail - head is a
// multiple of the lanes, and dst + head, a + head, b + head are 16-byte aligned).
template <class Element, class Op>
__global__ void combine(typename Element::Storage* dst, const typename Element::Storage* a,
                        const typename Element::Storage* b, size_t count, size_t head, size_t tail, Op op) {
  using Storage = typename Element::Storage;
  using Pack = Vector<Storage>;
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  const size_t first = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t packs = (tail - head) / Pack::kLanes;
  auto* dst_packs = reinterpret_cast<Pack*>(dst + head);
  const auto* a_packs = reinterpret_cast<const Pack*>(a + head);
  const auto* b_packs = reinterpret_cast<const Pack*>(b + head);
  for (size_t p = first; p < packs; p += stride) {
    const Pack x = a_packs[p], y = b_packs[p];
    Pack result;
#pragma unroll
    for (size_t lane = 0; lane < Pack::kLanes; ++lane)
      result.lanes[lane] = Element::apply(x.lanes[lane], y.lanes[lane], op);
    dst_packs[p] = result;
  }
  const size_t scalars = head + (count - tail);
  for (size_t s = first; s < scalars; s += stride) {
    const size_t i = s < head ? s : tail + (s - head);
    dst[i] = Element::apply(a[i], b[i], op);
  }
}

int multiprocessors() {
  int device = 0, count = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
    return 1;
  return std::max(count, 1);
}

template <class Element, class Op>
void launch(void* dst_buffer, const void* a_buffer, const void* b_buffer, size_t count, Op op, cudaStream_t stream) {
  if (count == 0) return;
  using Storage = typename Element::Storage;
  auto* dst = static_cast<Storage*>(dst_buffer);
  const auto* a = static_cast<const Storage*>(a_buffer);
  const auto* b = static_cast<const Storage*>(b_buffer);
  const size_t lanes = Vector<Storage>::kLanes;
  const auto offset = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % kVectorBytes; };
  size_t head = count, tail = count;  // all scalar unless the three share their offset
  if (offset(dst) == offset(a) && offset(dst) == offset(b) && offset(dst) % sizeof(Storage) == 0) {
    head = std::min(count, (kVectorBytes - offset(dst)) % kVectorBytes / sizeof(Storage));
    tail = head + (count - head) / lanes * lanes;
  }
  const size_t work = std::max((tail - head) / lanes, head + (count - tail));
  static const int blocks_per_device = 8 * multiprocessors();  // enough resident threads to stream memory
  const int blocks = int(std::clamp<size_t>((work + kThreads - 1) / kThreads, 1, size_t(blocks_per_device)));
  combine<Element><<<blocks, kThreads, 0, stream>>>(dst, a, b, count, head, tail, op);
  if (const cudaError_t error = cudaGetLastError(); error != cudaSuccess)
    throw std::runtime_error(std::string("CUDA reduce kernel: ") + cudaGetErrorString(error));
}

}  // namespace

void reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op, int divisor,
            cudaStream_t stream) {
  ops::check_divisor("cuda::reduce", divisor);
  ops::with_element(type, [&](auto element) {
    using Element = decltype(element);
    ops::with_operator<typename Element::Compute>(
        op, divisor, [&](auto element_op) { launch<Element>(dst, a, b, count, element_op, stream); });
  });
}

void divide(void* buffer, size_t count, DataType type, int divisor, cudaStream_t stream) {
  ops::check_divisor("cuda::divide", divisor);
  if (divisor == 1) return;
  ops::with_element(type, [&](auto element) {
    using Element = decltype(element);
    using Compute = typename Element::Compute;
    launch<Element>(buffer, buffer, buffer, count, ops::Quotient<Compute>{static_cast<ops::Divisor<Compute>>(divisor)},
                    stream);
  });
}

}  // namespace cclab::cuda
