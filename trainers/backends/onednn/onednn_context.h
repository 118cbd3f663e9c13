// Internal: the process's oneDNN engine and stream, and the oneDNN v2/v3 differences in building
// primitive descriptors (v3 folded the op descriptors into the primitive descriptors).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <optional>

namespace cclab::train::onednn {

struct Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};
/// Created on first use; one per process.
Context& context();

using dnnl::memory;
using Dims = memory::dims;
using Tag = memory::format_tag;

inline memory::desc plain_desc(const Dims& dims, Tag tag) { return memory::desc(dims, memory::data_type::f32, tag); }

dnnl::convolution_forward::primitive_desc convolution_forward_pd(dnnl::prop_kind prop, const memory::desc& src,
                                                                 const memory::desc& weights,
                                                                 const std::optional<memory::desc>& bias,
                                                                 const memory::desc& dst, const Dims& strides,
                                                                 const Dims& padding);
dnnl::convolution_backward_data::primitive_desc convolution_backward_data_pd(
    const memory::desc& diff_src, const memory::desc& weights, const memory::desc& diff_dst, const Dims& strides,
    const Dims& padding, const dnnl::convolution_forward::primitive_desc& hint);
dnnl::convolution_backward_weights::primitive_desc convolution_backward_weights_pd(
    const memory::desc& src, const memory::desc& diff_weights, const std::optional<memory::desc>& diff_bias,
    const memory::desc& diff_dst, const Dims& strides, const Dims& padding,
    const dnnl::convolution_forward::primitive_desc& hint);

dnnl::pooling_forward::primitive_desc max_pooling_forward_pd(dnnl::prop_kind prop, const memory::desc& src,
                                                             const memory::desc& dst, const Dims& strides,
                                                             const Dims& kernel, const Dims& padding);
dnnl::pooling_backward::primitive_desc max_pooling_backward_pd(const memory::desc& diff_src,
                                                               const memory::desc& diff_dst, const Dims& strides,
                                                               const Dims& kernel, const Dims& padding,
                                                               const dnnl::pooling_forward::primitive_desc& hint);

dnnl::eltwise_forward::primitive_desc relu_forward_pd(dnnl::prop_kind prop, const memory::desc& data);
dnnl::eltwise_backward::primitive_desc relu_backward_pd(const memory::desc& diff_data, const memory::desc& src,
                                                        const dnnl::eltwise_forward::primitive_desc& hint);

dnnl::inner_product_forward::primitive_desc inner_product_forward_pd(dnnl::prop_kind prop, const memory::desc& src,
                                                                     const memory::desc& weights,
                                                                     const std::optional<memory::desc>& bias,
                                                                     const memory::desc& dst);
dnnl::inner_product_backward_data::primitive_desc inner_product_backward_data_pd(
    const memory::desc& diff_src, const memory::desc& weights, const memory::desc& diff_dst,
    const dnnl::inner_product_forward::primitive_desc& hint);
dnnl::inner_product_backward_weights::primitive_desc inner_product_backward_weights_pd(
    const memory::desc& src, const memory::desc& diff_weights, const std::optional<memory::desc>& diff_bias,
    const memory::desc& diff_dst, const dnnl::inner_product_forward::primitive_desc& hint);

/// dst = src x weights (+ bias), the fully connected layer's forward as a matrix product.
dnnl::matmul::primitive_desc matmul_pd(const memory::desc& src, const memory::desc& weights,
                                       const std::optional<memory::desc>& bias, const memory::desc& dst);

}  // namespace cclab::train::onednn
