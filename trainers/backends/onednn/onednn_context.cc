// oneDNN v2 builds an op descriptor, then a primitive descriptor from it; v3 builds the primitive
// descriptor directly (and pooling takes dilations). Both are spelled out here, once.
#include "backends/onednn/onednn_context.h"

namespace cclab::train::onednn {

Context& context() {
  static Context instance;
  return instance;
}

namespace {
using dnnl::algorithm;
using dnnl::prop_kind;
#if DNNL_VERSION_MAJOR >= 3
const Dims kNoDilation{0, 0};
#endif
}  // namespace

dnnl::convolution_forward::primitive_desc convolution_forward_pd(prop_kind prop, const memory::desc& src,
                                                                 const memory::desc& weights,
                                                                 const std::optional<memory::desc>& bias,
                                                                 const memory::desc& dst, const Dims& strides,
                                                                 const Dims& padding) {
  using P = dnnl::convolution_forward;
#if DNNL_VERSION_MAJOR >= 3
  if (bias)
    return P::primitive_desc(context().engine, prop, algorithm::convolution_direct, src, weights, *bias, dst, strides,
                             padding, padding);
  return P::primitive_desc(context().engine, prop, algorithm::convolution_direct, src, weights, dst, strides, padding,
                           padding);
#else
  if (bias)
    return P::primitive_desc(
        P::desc(prop, algorithm::convolution_direct, src, weights, *bias, dst, strides, padding, padding),
        context().engine);
  return P::primitive_desc(P::desc(prop, algorithm::convolution_direct, src, weights, dst, strides, padding, padding),
                           context().engine);
#endif
}

dnnl::convolution_backward_data::primitive_desc convolution_backward_data_pd(
    const memory::desc& diff_src, const memory::desc& weights, const memory::desc& diff_dst, const Dims& strides,
    const Dims& padding, const dnnl::convolution_forward::primitive_desc& hint) {
  using P = dnnl::convolution_backward_data;
#if DNNL_VERSION_MAJOR >= 3
  return P::primitive_desc(context().engine, algorithm::convolution_direct, diff_src, weights, diff_dst, strides,
                           padding, padding, hint);
#else
  return P::primitive_desc(
      P::desc(algorithm::convolution_direct, diff_src, weights, diff_dst, strides, padding, padding), context().engine,
      hint);
#endif
}

dnnl::convolution_backward_weights::primitive_desc convolution_backward_weights_pd(
    const memory::desc& src, const memory::desc& diff_weights, const std::optional<memory::desc>& diff_bias,
    const memory::desc& diff_dst, const Dims& strides, const Dims& padding,
    const dnnl::convolution_forward::primitive_desc& hint) {
  using P = dnnl::convolution_backward_weights;
#if DNNL_VERSION_MAJOR >= 3
  if (diff_bias)
    return P::primitive_desc(context().engine, algorithm::convolution_direct, src, diff_weights, *diff_bias, diff_dst,
                             strides, padding, padding, hint);
  return P::primitive_desc(context().engine, algorithm::convolution_direct, src, diff_weights, diff_dst, strides,
                           padding, padding, hint);
#else
  if (diff_bias)
    return P::primitive_desc(P::desc(algorithm::convolution_direct, src, diff_weights, *diff_bias, diff_dst, strides,
                                     padding, padding),
                             context().engine, hint);
  return P::primitive_desc(
      P::desc(algorithm::convolution_direct, src, diff_weights, diff_dst, strides, padding, padding), context().engine,
      hint);
#endif
}

dnnl::pooling_forward::primitive_desc max_pooling_forward_pd(prop_kind prop, const memory::desc& src,
                                                             const memory::desc& dst, const Dims& strides,
                                                             const Dims& kernel, const Dims& padding) {
  using P = dnnl::pooling_forward;
#if DNNL_VERSION_MAJOR >= 3
  return P::primitive_desc(context().engine, prop, algorithm::pooling_max, src, dst, strides, kernel, kNoDilation,
                           padding, padding);
#else
  return P::primitive_desc(P::desc(prop, algorithm::pooling_max, src, dst, strides, kernel, padding, padding),
                           context().engine);
#endif
}

dnnl::pooling_backward::primitive_desc max_pooling_backward_pd(const memory::desc& diff_src,
                                                               const memory::desc& diff_dst, const Dims& strides,
                                                               const Dims& kernel, const Dims& padding,
                                                               const dnnl::pooling_forward::primitive_desc& hint) {
  using P = dnnl::pooling_backward;
#if DNNL_VERSION_MAJOR >= 3
  return P::primitive_desc(context().engine, algorithm::pooling_max, diff_src, diff_dst, strides, kernel, kNoDilation,
                           padding, padding, hint);
#else
  return P::primitive_desc(P::desc(algorithm::pooling_max, diff_src, diff_dst, strides, kernel, padding, padding),
                           context().engine, hint);
#endif
}

dnnl::eltwise_forward::primitive_desc relu_forward_pd(prop_kind prop, const memory::desc& data) {
  using P = dnnl::eltwise_forward;
#if DNNL_VERSION_MAJOR >= 3
  return P::primitive_desc(context().engine, prop, algorithm::eltwise_relu, data, data, 0.0f, 0.0f);
#else
  return P::primitive_desc(P::desc(prop, algorithm::eltwise_relu, data, 0.0f, 0.0f), context().engine);
#endif
}

dnnl::eltwise_backward::primitive_desc relu_backward_pd(const memory::desc& diff_data, const memory::desc& src,
                                                        const dnnl::eltwise_forward::primitive_desc& hint) {
  using P = dnnl::eltwise_backward;
#if DNNL_VERSION_MAJOR >= 3
  return P::primitive_desc(context().engine, algorithm::eltwise_relu, diff_data, diff_data, src, 0.0f, 0.0f, hint);
#else
  return P::primitive_desc(P::desc(algorithm::eltwise_relu, diff_data, src, 0.0f, 0.0f), context().engine, hint);
#endif
}

dnnl::inner_product_forward::primitive_desc inner_product_forward_pd(prop_kind prop, const memory::desc& src,
                                                                     const memory::desc& weights,
                                                                     const std::optional<memory::desc>& bias,
                                                                     const memory::desc& dst) {
  using P = dnnl::inner_product_forward;
#if DNNL_VERSION_MAJOR >= 3
  if (bias) return P::primitive_desc(context().engine, prop, src, weights, *bias, dst);
  return P::primitive_desc(context().engine, prop, src, weights, dst);
#else
  if (bias) return P::primitive_desc(P::desc(prop, src, weights, *bias, dst), context().engine);
  return P::primitive_desc(P::desc(prop, src, weights, dst), context().engine);
#endif
}

dnnl::inner_product_backward_data::primitive_desc inner_product_backward_data_pd(
    const memory::desc& diff_src, const memory::desc& weights, const memory::desc& diff_dst,
    const dnnl::inner_product_forward::primitive_desc& hint) {
  using P = dnnl::inner_product_backward_data;
#if DNNL_VERSION_MAJOR >= 3
  return P::primitive_desc(context().engine, diff_src, weights, diff_dst, hint);
#else
  return P::primitive_desc(P::desc(diff_src, weights, diff_dst), context().engine, hint);
#endif
}

dnnl::inner_product_backward_weights::primitive_desc inner_product_backward_weights_pd(
    const memory::desc& src, const memory::desc& diff_weights, const std::optional<memory::desc>& diff_bias,
    const memory::desc& diff_dst, const dnnl::inner_product_forward::primitive_desc& hint) {
  using P = dnnl::inner_product_backward_weights;
#if DNNL_VERSION_MAJOR >= 3
  if (diff_bias) return P::primitive_desc(context().engine, src, diff_weights, *diff_bias, diff_dst, hint);
  return P::primitive_desc(context().engine, src, diff_weights, diff_dst, hint);
#else
  if (diff_bias) return P::primitive_desc(P::desc(src, diff_weights, *diff_bias, diff_dst), context().engine, hint);
  return P::primitive_desc(P::desc(src, diff_weights, diff_dst), context().engine, hint);
#endif
}

dnnl::matmul::primitive_desc matmul_pd(const memory::desc& src, const memory::desc& weights,
                                       const std::optional<memory::desc>& bias, const memory::desc& dst) {
  using P = dnnl::matmul;
#if DNNL_VERSION_MAJOR >= 3
  if (bias) return P::primitive_desc(context().engine, src, weights, *bias, dst);
  return P::primitive_desc(context().engine, src, weights, dst);
#else
  if (bias) return P::primitive_desc(P::desc(src, weights, *bias, dst), context().engine);
  return P::primitive_desc(P::desc(src, weights, dst), context().engine);
#endif
}

}  // namespace cclab::train::onednn
