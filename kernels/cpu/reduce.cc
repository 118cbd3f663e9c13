// CPU reduce kernels.
//
// Every loop is a plain element-wise template compiled three times: for the default x86-64 target
// (SSE2), under target("avx2,f16c") and under AVX-512 (F, BW, VL) with 64-byte vectors preferred;
// the first call picks the best the CPU has (KernelLevel, cclab/reduce.h; AVX-512 for arrays of up
// to 1 MiB, AVX2 beyond, where it streams as fast). The entry points are
// [[gnu::flatten]], so the templates are inlined into them before the vectorizer runs and are
// compiled for the entry's instruction set. Dispatch is by hand rather than target_clones because
// the AVX2 variant also needs F16C, which an "avx2" clone does not enable, and GCC's generic tuning
// keeps AVX-512 code at 32-byte vectors unless prefer-vector-width=512 is asked for.
//
// What g++ 12.2 vectorizes at -O3 (how that was checked: docs/measurements.md):
// Vectorized (16-byte vectors for SSE2, 32-byte for AVX2, 64-byte for AVX-512): every f32, f64,
// i32, u8 and bf16 loop for every operator and aliasing form, and divide(); float min/max compile
// to compare, or and blend; u8/i32 averages divide in packed double; f16 on AVX2 and AVX-512 uses
// vcvtph2ps/vcvtps2ph on ymm.
// Not vectorized: i64 averages (no SIMD integer division), i64 prod/min/max and x[i] + x[i] on
// SSE2 (no 64-bit multiply or compare before SSE4.2/AVX2; the last judged unprofitable), and f16
// without F16C (scalar conversions).
#include "cclab/reduce.h"

#include <immintrin.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cclab/reduce_operators.h"

namespace cclab {
namespace {


#define CCLAB_AVX512_TARGET "avx512f,avx512bw,avx512vl,avx2,f16c,prefer-vector-width=512"

// The element operators (Sum, Prod, Min, Max, SumDivide, Quotient) and the 16-bit rounding come
// from cclab/reduce_operators.h, which the CUDA kernels share.
using namespace reduce_operators;

// ---------------------------------------------------------------------------------------------
// Loops. __restrict tells the vectorizer the arrays do not overlap, which lets it skip runtime
// overlap checks. An exactly aliased dst therefore gets its own in-place loop instead of a loop
// whose restrict promise would be false.

template <class T, class Op>
void combine(T* __restrict dst, const T* __restrict a, const T* __restrict b, size_t count, Op op) {
  for (size_t i = 0; i < count; ++i) dst[i] = op(a[i], b[i]);
}

template <class T, class Op>
void combine_into_a(T* __restrict a, const T* __restrict b, size_t count, Op op) {
  for (size_t i = 0; i < count; ++i) a[i] = op(a[i], b[i]);
}

template <class T, class Op>
void combine_into_b(const T* __restrict a, T* __restrict b, size_t count, Op op) {
  for (size_t i = 0; i < count; ++i) b[i] = op(a[i], b[i]);
}

template <class T, class Op>
void combine_with_itself(T* __restrict x, size_t count, Op op) {
  for (size_t i = 0; i < count; ++i) x[i] = op(x[i], x[i]);
}

template <class T, class Op>
void combine_aliased(T* dst, const T* a, const T* b, size_t count, Op op) {
  if (dst == a && dst == b) {
    combine_with_itself(dst, count, op);
  } else if (dst == a) {
    combine_into_a(dst, b, count, op);
  } else if (dst == b) {
    combine_into_b(a, dst, count, op);
  } else {
    combine(dst, a, b, count, op);
  }
}

// ---------------------------------------------------------------------------------------------
// Kernels: one per storage type. Compute is the type the element operators see; run() combines
// `count` elements (dst may alias a or b exactly). 16-bit floats are widened to f32, combined and
// rounded back to nearest even in the same loop.

template <class T>
struct NativeKernel {
  using Compute = T;

  template <class Op>
  static void run(void* dst, const void* a, const void* b, size_t count, Op op) {
    combine_aliased(static_cast<T*>(dst), static_cast<const T*>(a), static_cast<const T*>(b), count, op);
  }
};

/// Two adjacent bf16 values read as one 32-bit word, the first in the low half (x86 is
/// little-endian). may_alias: it is read from uint16_t buffers; packed/aligned(2): those are only
/// 2-byte aligned.
struct [[gnu::may_alias, gnu::packed, gnu::aligned(2)]] Bf16Pair {
  uint32_t bits;
};

/// Applies Op to both halves of a pair. Widening is a shift (first value) and a mask (second), and
/// the rounded results recombine with a shift and an OR: no lane shuffles, which makes the
/// vectorized loop about twice as fast as one over 16-bit lanes.
template <class Op>
struct Bf16PairOp {
  Op op;

  Bf16Pair operator()(Bf16Pair x, Bf16Pair y) const {
    const float first = op(bits_float(x.bits << 16), bits_float(y.bits << 16));
    const float second = op(bits_float(x.bits & 0xffff0000), bits_float(y.bits & 0xffff0000));
    return Bf16Pair{bf16_round_high(first) >> 16 | bf16_round_high(second)};
  }
};

struct Bf16Kernel {
  using Compute = float;

  template <class Op>
  static void run(void* dst, const void* a, const void* b, size_t count, Op op) {
    combine_aliased(static_cast<Bf16Pair*>(dst), static_cast<const Bf16Pair*>(a),
                    static_cast<const Bf16Pair*>(b), count / 2, Bf16PairOp<Op>{op});
    if (count % 2 != 0) {
      const size_t last = count - 1;
      const auto widen = [](const void* buffer, size_t index) {
        return reduce_operators::bf16_to_f32(static_cast<const uint16_t*>(buffer)[index]);
      };
      const float result = op(widen(a, last), widen(b, last));
      static_cast<uint16_t*>(dst)[last] = static_cast<uint16_t>(bf16_round_high(result) >> 16);
    }
  }
};

/// f16 without F16C (x86-64 CPUs before 2013): the shared scalar conversions, unvectorized.
struct F16ScalarKernel {
  using Compute = float;

  template <class Op>
  struct HalfOp {
    Op op;
    uint16_t operator()(uint16_t x, uint16_t y) const {
      return reduce_operators::f32_to_f16(op(reduce_operators::f16_to_f32(x), reduce_operators::f16_to_f32(y)));
    }
  };

  template <class Op>
  static void run(void* dst, const void* a, const void* b, size_t count, Op op) {
    combine_aliased(static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(a),
                    static_cast<const uint16_t*>(b), count, HalfOp<Op>{op});
  }
};

/// f16 with the F16C instructions, eight elements at a time. They round to nearest even and quiet
/// NaNs exactly as the shared conversions (reduce_operators.h) do. Each group of eight is read
/// before it is written, so dst may alias a or b.
struct F16HardwareKernel {
  using Compute = float;

  template <class Op>
  [[gnu::target("avx2,f16c")]] static void run(void* dst_buffer, const void* a_buffer, const void* b_buffer,
                                               size_t count, Op op) {
    auto* dst = static_cast<uint16_t*>(dst_buffer);
    const auto* a = static_cast<const uint16_t*>(a_buffer);
    const auto* b = static_cast<const uint16_t*>(b_buffer);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
      const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
      const __m256 y = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
      const __m128i result = _mm256_cvtps_ph(op(x, y), _MM_FROUND_TO_NEAREST_INT);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), result);
    }
    for (; i < count; ++i) {
      dst[i] = _cvtss_sh(op(_cvtsh_ss(a[i]), _cvtsh_ss(b[i])), _MM_FROUND_TO_NEAREST_INT);
    }
  }
};

template <KernelLevel level>
using F16Kernel = std::conditional_t<level == KernelLevel::sse2, F16ScalarKernel, F16HardwareKernel>;

// ---------------------------------------------------------------------------------------------
// Dispatch on type and operator.

/// The CPU kernel of an element type (reduce_operators.h's Native, Half, BFloat).
template <class Element, KernelLevel level>
struct CpuKernelOf {
  using type = NativeKernel<typename Element::Storage>;
};
template <KernelLevel level>
struct CpuKernelOf<Half, level> {
  using type = F16Kernel<level>;
};
template <KernelLevel level>
struct CpuKernelOf<BFloat, level> {
  using type = Bf16Kernel;
};

/// Calls visit(kernel) with the kernel for `type`.
template <KernelLevel level, class Visit>
void with_kernel(DataType type, Visit&& visit) {
  with_element(type, [&](auto element) { visit(typename CpuKernelOf<decltype(element), level>::type{}); });
}

template <KernelLevel level>
void reduce_at(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op,
               int divisor) {
  with_kernel<level>(type, [&](auto kernel) {
    using Kernel = decltype(kernel);
    with_operator<typename Kernel::Compute>(
        op, divisor, [&](auto element_op) { Kernel::run(dst, a, b, count, element_op); });
  });
}

template <KernelLevel level>
void divide_at(void* buffer, size_t count, DataType type, int divisor) {
  with_kernel<level>(type, [&](auto kernel) {
    using Kernel = decltype(kernel);
    using Compute = typename Kernel::Compute;
    Kernel::run(buffer, buffer, buffer, count, Quotient<Compute>{static_cast<Divisor<Compute>>(divisor)});
  });
}

// ---------------------------------------------------------------------------------------------
// Entry points per instruction set. flatten inlines the whole call tree, so every loop above is
// compiled for the entry's target.

[[gnu::flatten]] void reduce_sse2(void* dst, const void* a, const void* b, size_t count, DataType type,
                                  ReduceOp op, int divisor) {
  reduce_at<KernelLevel::sse2>(dst, a, b, count, type, op, divisor);
}

[[gnu::flatten, gnu::target("avx2,f16c")]] void reduce_avx2(void* dst, const void* a, const void* b,
                                                            size_t count, DataType type, ReduceOp op,
                                                            int divisor) {
  reduce_at<KernelLevel::avx2>(dst, a, b, count, type, op, divisor);
}

[[gnu::flatten, gnu::target(CCLAB_AVX512_TARGET)]] void reduce_avx512(void* dst, const void* a, const void* b,
                                                                      size_t count, DataType type,
                                                                      ReduceOp op, int divisor) {
  reduce_at<KernelLevel::avx512>(dst, a, b, count, type, op, divisor);
}

[[gnu::flatten]] void divide_sse2(void* buffer, size_t count, DataType type, int divisor) {
  divide_at<KernelLevel::sse2>(buffer, count, type, divisor);
}

[[gnu::flatten, gnu::target("avx2,f16c")]] void divide_avx2(void* buffer, size_t count, DataType type,
                                                            int divisor) {
  divide_at<KernelLevel::avx2>(buffer, count, type, divisor);
}

[[gnu::flatten, gnu::target(CCLAB_AVX512_TARGET)]] void divide_avx512(void* buffer, size_t count, DataType type,
                                                                      int divisor) {
  divide_at<KernelLevel::avx512>(buffer, count, type, divisor);
}

struct Kernels {
  decltype(&reduce_sse2) reduce;
  decltype(&divide_sse2) divide;
};

const Kernels& kernels_at(KernelLevel level) {
  static const Kernels sse2{reduce_sse2, divide_sse2};
  static const Kernels avx2{reduce_avx2, divide_avx2};
  static const Kernels avx512{reduce_avx512, divide_avx512};
  switch (level) {
    case KernelLevel::avx512:
      return avx512;
    case KernelLevel::avx2:
      return avx2;
    case KernelLevel::sse2:
      break;
  }
  return sse2;
}

bool cpu_has(KernelLevel level) {
  __builtin_cpu_init();
  switch (level) {
    case KernelLevel::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && cpu_has(KernelLevel::avx2);
    case KernelLevel::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    case KernelLevel::sse2:
      break;
  }
  return true;
}

// Arrays longer than this stream from memory, where 64-byte vectors gained nothing over 32-byte ones
// on the Zen 5 VMs (they lost 5-10%, docs/measurements.md); in cache they win by about 12%.
constexpr size_t kWidestVectorsMostBytes = size_t{1} << 20;

/// The kernels for arrays of `bytes` each: the best level, except AVX-512 on arrays beyond cache.
const Kernels& kernels(size_t bytes) {
  static const KernelLevel best = best_kernel_level();
  if (best == KernelLevel::avx512 && bytes > kWidestVectorsMostBytes) return kernels_at(KernelLevel::avx2);
  return kernels_at(best);
}

void check_buffers(const char* what, size_t count, std::initializer_list<const void*> buffers) {
  if (count == 0) return;
  for (const void* buffer : buffers)
    if (buffer == nullptr) throw std::invalid_argument(std::string(what) + ": null buffer with count " +
                                                       std::to_string(count));
}


}  // namespace

const char* kernel_level_name(KernelLevel level) {
  switch (level) {
    case KernelLevel::avx512:
      return "avx512";
    case KernelLevel::avx2:
      return "avx2";
    case KernelLevel::sse2:
      break;
  }
  return "sse2";
}

std::vector<KernelLevel> supported_kernel_levels() {
  std::vector<KernelLevel> levels;
  for (KernelLevel level : {KernelLevel::sse2, KernelLevel::avx2, KernelLevel::avx512})
    if (cpu_has(level)) levels.push_back(level);
  return levels;
}

KernelLevel best_kernel_level() {
  static const KernelLevel best = supported_kernel_levels().back();
  return best;
}

void reduce(KernelLevel level, void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op,
            int divisor) {
  check_divisor("reduce", divisor);
  check_buffers("reduce", count, {dst, a, b});
  if (!cpu_has(level))
    throw std::invalid_argument(std::string("reduce: this CPU cannot run the ") + kernel_level_name(level) +
                                " kernels");
  kernels_at(level).reduce(dst, a, b, count, type, op, divisor);
}

void reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op, int divisor) {
  check_divisor("reduce", divisor);
  check_buffers("reduce", count, {dst, a, b});
  kernels(count * dtype_size(type)).reduce(dst, a, b, count, type, op, divisor);
}

void divide(void* buffer, size_t count, DataType type, int divisor) {
  check_divisor("divide", divisor);
  if (divisor == 1) return;
  if (count > 0 && buffer == nullptr) {
    throw std::invalid_argument("divide: null buffer with count " + std::to_string(count));
  }
  kernels(count * dtype_size(type)).divide(buffer, count, type, divisor);
}

}  // namespace cclab
