// The element operators the CUDA kernels run (cclab/reduce_operators.h: Native, Half, BFloat with
// Sum ... Quotient), compiled for the host and applied one element at a time, give the CPU kernels'
// bits for every dtype and operator, infinities, zeros, subnormals and NaN operands included (a NaN
// result is compared as NaN: first_difference says why). With
// cuda_kernels_test (on a GPU) this closes the chain CPU kernels = shared operators = device.
#include <gtest/gtest.h>

#include <vector>

#include "cclab/reduce.h"
#include "cclab/reduce_operators.h"
#include "reduce_inputs.h"

namespace cclab {
namespace {

namespace ops = reduce_operators;

// dst[i] = Element::apply(a[i], b[i], op), as the CUDA kernel computes each element.
void reduce_one_at_a_time(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op,
                          int divisor) {
  ops::with_element(type, [&](auto element) {
    using Element = decltype(element);
    using Storage = typename Element::Storage;
    ops::with_operator<typename Element::Compute>(op, divisor, [&](auto element_op) {
      for (size_t i = 0; i < count; ++i)
        static_cast<Storage*>(dst)[i] =
            Element::apply(static_cast<const Storage*>(a)[i], static_cast<const Storage*>(b)[i], element_op);
    });
  });
}

TEST(ReduceOperators, OneElementAtATimeEqualsTheCpuKernelsBitForBit) {
  constexpr size_t kCount = 4099;
  for (DataType type : kAllDataTypes)
    for (ReduceOp op : kAllReduceOps)
      for (int divisor : {1, 3}) {
        if (divisor > 1 && op != ReduceOp::avg) continue;
        const auto a = reduce_inputs(type, kCount, 1), b = reduce_inputs(type, kCount, 2);
        std::vector<std::byte> cpu(a.size()), shared(a.size());
        reduce(cpu.data(), a.data(), b.data(), kCount, type, op, divisor);
        reduce_one_at_a_time(shared.data(), a.data(), b.data(), kCount, type, op, divisor);
        EXPECT_EQ(first_difference(type, cpu.data(), shared.data(), kCount), kCount)
            << dtype_name(type) << " " << op_name(op) << " divisor " << divisor;
      }
}

TEST(ReduceOperators, QuotientEqualsTheCpuDivide) {
  constexpr size_t kCount = 1001;
  for (DataType type : kAllDataTypes) {
    const auto input = reduce_inputs(type, kCount, 3);
    std::vector<std::byte> cpu = input, shared(input.size());
    divide(cpu.data(), kCount, type, 5);
    ops::with_element(type, [&](auto element) {
      using Element = decltype(element);
      using Storage = typename Element::Storage;
      using Compute = typename Element::Compute;
      const ops::Quotient<Compute> quotient{static_cast<ops::Divisor<Compute>>(5)};
      const auto* in = reinterpret_cast<const Storage*>(input.data());
      for (size_t i = 0; i < kCount; ++i)
        reinterpret_cast<Storage*>(shared.data())[i] = Element::apply(in[i], in[i], quotient);
    });
    EXPECT_EQ(first_difference(type, cpu.data(), shared.data(), kCount), kCount) << dtype_name(type);
  }
}

}  // namespace
}  // namespace cclab
