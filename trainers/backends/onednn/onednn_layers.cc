// The four layer kinds on oneDNN primitives, over the plain layouts of layer.h (NHWC activations,
// OIHW / [out][in] weights), so buffers pass between layers, ranks and backends unchanged.
//
// Each layer keeps, per batch size, its primitives and dnnl::memory objects with their argument
// maps; a call only re-points the memory objects at the caller's buffers (set_data_handle) and
// executes. Parameter gradients go straight into the model's gradient buffer, or, when accumulating,
// into a scratch buffer that is then added.
#include <omp.h>

#include <cstring>
#include <functional>
#include <unordered_map>

#include "backends/onednn/onednn_backend.h"
#include "backends/onednn/onednn_context.h"
#include "cclab/error.h"
#include "model/buffer.h"

namespace cclab::train {
namespace {

using namespace onednn;
using dnnl::prop_kind;

/// A primitive with its arguments bound to memory objects whose data handles change per call.
struct Execution {
  dnnl::primitive primitive;
  std::unordered_map<int, memory> arguments;

  void run() {
    primitive.execute(context().stream, arguments);
    context().stream.wait();
  }
};

memory unbound(const memory::desc& desc) { return memory(desc, context().engine, DNNL_MEMORY_NONE); }
void point(memory& target, const void* data) { target.set_data_handle(const_cast<void*>(data)); }

/// Per batch size, built on first use.
template <typename Entry>
class PerBatch {
 public:
  explicit PerBatch(std::function<std::unique_ptr<Entry>(size_t)> build) : build_(std::move(build)) {}
  Entry& at(size_t batch) {
    auto found = entries_.find(batch);
    if (found == entries_.end()) found = entries_.emplace(batch, build_(batch)).first;
    return *found->second;
  }

 private:
  std::function<std::unique_ptr<Entry>(size_t)> build_;
  std::unordered_map<size_t, std::unique_ptr<Entry>> entries_;
};

void add_into(std::span<float> target, const float* addend) {
  float* out = target.data();
  const long count = static_cast<long>(target.size());
#pragma omp parallel for simd schedule(static) if (count > (1 << 16))
  for (long i = 0; i < count; ++i) out[i] += addend[i];
}

Dims activation_dims(size_t batch, const ActivationShape& shape) {
  return {memory::dim(batch), memory::dim(shape.channels), memory::dim(shape.height), memory::dim(shape.width)};
}

// Where backward writes parameter gradients: the model's buffer, or scratch to be added to it.
struct GradientTarget {
  float* weights;
  float* bias;
};

class ParameterisedLayer : public Layer {
 public:
  using Layer::Layer;

 protected:
  GradientTarget gradient_target(bool accumulate) {
    if (!accumulate) return {weight_grads().data(), bias_grads().data()};
    scratch_.resize(parameter_count());
    return {scratch_.data(), scratch_.data() + config().weight_count()};
  }
  void finish_gradients(bool accumulate) {
    if (!accumulate) return;
    add_into(weight_grads(), scratch_.data());
    add_into(bias_grads(), scratch_.data() + config().weight_count());
  }

 private:
  FloatBuffer scratch_;
};

// Weights live in the flat buffer as plain OIHW; the jit convolutions want a blocked weights layout
// (format "any" lets each primitive pick it). Weights are small next to activations, so they are
// reordered into the primitive's layout right before each use, and weight gradients reordered back.
class ConvolutionLayer final : public ParameterisedLayer {
 public:
  explicit ConvolutionLayer(const LayerConfig& config)
      : ParameterisedLayer(config), primitives_([this](size_t batch) { return build(batch); }) {}

  void forward(const ForwardArgs& args) override {
    Primitives& p = primitives_.at(args.batch);
    point(p.src, args.input);
    point(p.plain_weights, weights().data());
    if (config().bias) point(p.bias, bias().data());
    point(p.dst, args.output);
    if (p.to_forward_weights) p.to_forward_weights->run();
    p.forward.run();
  }

  void backward(const BackwardArgs& args) override {
    Primitives& p = primitives_.at(args.batch);
    point(p.diff_dst, args.output_grad);
    if (args.input_grad) {
      if (!p.backward_data) build_backward_data(p, args.batch);
      point(p.plain_weights, weights().data());
      point(p.diff_src, args.input_grad);
      if (p.to_backward_data_weights) p.to_backward_data_weights->run();
      p.backward_data->run();
    }
    const GradientTarget target = gradient_target(args.accumulate);
    point(p.src, args.input);
    point(p.plain_diff_weights, target.weights);
    if (config().bias) point(p.diff_bias, target.bias);
    p.backward_weights.run();
    if (p.from_diff_weights) p.from_diff_weights->run();
    finish_gradients(args.accumulate);
  }

 private:
  struct Primitives {
    dnnl::convolution_forward::primitive_desc forward_pd;
    memory src, plain_weights, bias, dst, diff_dst, diff_src, plain_diff_weights, diff_bias;
    // The primitives' own weight layouts where they differ from OIHW, with the reorders between.
    memory forward_weights, backward_data_weights, diff_weights;
    Execution forward, backward_weights;
    std::optional<Execution> backward_data, to_forward_weights, to_backward_data_weights, from_diff_weights;
  };

  memory::desc src_desc(size_t batch) const { return plain_desc(activation_dims(batch, config().input), Tag::nhwc); }
  memory::desc dst_desc(size_t batch) const { return plain_desc(activation_dims(batch, output_shape()), Tag::nhwc); }
  Dims weights_dims() const {
    const LayerConfig& c = config();
    return {memory::dim(c.outputs.count), memory::dim(c.input.channels), memory::dim(c.kernel), memory::dim(c.kernel)};
  }
  memory::desc plain_weights_desc() const { return plain_desc(weights_dims(), Tag::oihw); }
  memory::desc any_weights_desc() const { return plain_desc(weights_dims(), Tag::any); }
  std::optional<memory::desc> bias_desc() const {
    if (!config().bias) return std::nullopt;
    return plain_desc({memory::dim(config().outputs.count)}, Tag::x);
  }
  Dims strides() const { return {memory::dim(config().stride), memory::dim(config().stride)}; }
  Dims padding() const { return {memory::dim(config().padding), memory::dim(config().padding)}; }

  // The memory a primitive should use for weights described by `wanted`: the plain one when the
  // layouts agree, else an owned buffer plus a reorder (plain -> wanted, or wanted -> plain).
  static memory weights_for(const memory::desc& wanted, const memory& plain, std::optional<Execution>& reorder,
                            bool into_plain) {
    if (wanted == plain.get_desc()) return plain;
    memory own(wanted, context().engine);
    const memory& from = into_plain ? own : plain;
    const memory& to = into_plain ? plain : own;
    reorder = Execution{dnnl::reorder(from, to), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}};
    return own;
  }

  std::unique_ptr<Primitives> build(size_t batch) const {
    auto p = std::make_unique<Primitives>();
    const memory::desc src = src_desc(batch), dst = dst_desc(batch);
    p->forward_pd = convolution_forward_pd(prop_kind::forward_training, src, any_weights_desc(), bias_desc(), dst,
                                           strides(), padding());
    p->src = unbound(src);
    p->dst = unbound(dst);
    p->plain_weights = unbound(plain_weights_desc());
    p->plain_diff_weights = unbound(plain_weights_desc());
    p->diff_dst = unbound(dst);
    p->diff_src = unbound(src);
    p->forward_weights = weights_for(p->forward_pd.weights_desc(), p->plain_weights, p->to_forward_weights, false);
    p->forward = {dnnl::convolution_forward(p->forward_pd),
                  {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_WEIGHTS, p->forward_weights}, {DNNL_ARG_DST, p->dst}}};
    const auto weights_pd = convolution_backward_weights_pd(src, any_weights_desc(), bias_desc(), dst, strides(),
                                                            padding(), p->forward_pd);
    p->diff_weights = weights_for(weights_pd.diff_weights_desc(), p->plain_diff_weights, p->from_diff_weights, true);
    p->backward_weights = {dnnl::convolution_backward_weights(weights_pd),
                           {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_DIFF_DST, p->diff_dst},
                            {DNNL_ARG_DIFF_WEIGHTS, p->diff_weights}}};
    if (const auto bias = bias_desc()) {
      p->bias = unbound(*bias);
      p->diff_bias = unbound(*bias);
      p->forward.arguments.emplace(DNNL_ARG_BIAS, p->bias);
      p->backward_weights.arguments.emplace(DNNL_ARG_DIFF_BIAS, p->diff_bias);
    }
    return p;
  }

  void build_backward_data(Primitives& p, size_t batch) const {
    const auto pd = convolution_backward_data_pd(src_desc(batch), any_weights_desc(), dst_desc(batch), strides(),
                                                 padding(), p.forward_pd);
    p.backward_data_weights = weights_for(pd.weights_desc(), p.plain_weights, p.to_backward_data_weights, false);
    p.backward_data = Execution{dnnl::convolution_backward_data(pd),
                                {{DNNL_ARG_DIFF_DST, p.diff_dst}, {DNNL_ARG_WEIGHTS, p.backward_data_weights},
                                 {DNNL_ARG_DIFF_SRC, p.diff_src}}};
  }

  PerBatch<Primitives> primitives_;
};

// Max pooling over NHWC. On AVX2 and older, oneDNN's jit pooling handles a channel count that is not
// a multiple of 8 with masked loads/stores per pixel, which are slow (microcoded on AMD), so there
// the layer pools a copy padded to a multiple of 8 channels (the padding stays zero; its results are
// dropped), paying two cheap strided reorders per pass. AVX-512 masks are cheap: no padding there.
// Figures: docs/measurements.md.
class MaxPoolLayer final : public Layer {
 public:
  explicit MaxPoolLayer(const LayerConfig& config)
      : Layer(config), primitives_([this](size_t batch) { return build(batch); }) {}

  size_t workspace_bytes(size_t batch) const override {
    return primitives_.at(batch).training_pd.workspace_desc().get_size();
  }

  void forward(const ForwardArgs& args) override {
    Primitives& p = primitives_.at(args.batch);
    point(p.src, args.input);
    point(p.dst, args.output);
    if (p.pad_input) p.pad_input->run();
    if (args.training) {
      point(p.workspace, args.workspace);
      p.training.run();
    } else {
      p.inference.run();
    }
    if (p.unpad_output) p.unpad_output->run();
  }

  void backward(const BackwardArgs& args) override {
    if (!args.input_grad) return;  // no parameters: nothing to do unless someone wants the input gradient
    Primitives& p = primitives_.at(args.batch);
    point(p.diff_dst, args.output_grad);
    point(p.diff_src, args.input_grad);
    point(p.workspace, args.workspace);
    if (p.pad_output_grad) p.pad_output_grad->run();
    p.backward.run();
    if (p.unpad_input_grad) p.unpad_input_grad->run();
  }

 private:
  struct Primitives {
    dnnl::pooling_forward::primitive_desc training_pd;
    // The caller's buffers.
    memory src, dst, workspace, diff_dst, diff_src;
    // What the pooling primitives read and write: the caller's buffers, or padded copies.
    memory pool_src, pool_dst, pool_diff_dst, pool_diff_src;
    Execution training, inference, backward;
    std::optional<Execution> pad_input, unpad_output, pad_output_grad, unpad_input_grad;
  };

  static size_t padded_channels(size_t channels) {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    const bool masks_are_slow = isa == dnnl::cpu_isa::sse41 || isa == dnnl::cpu_isa::avx ||
                                isa == dnnl::cpu_isa::avx2 || isa == dnnl::cpu_isa::avx2_vnni;
    return masks_are_slow ? (channels + 7) / 8 * 8 : channels;
  }

  // A zeroed buffer of `padded` (channels padded), and a reorder between the caller's `dense` memory
  // and the padded buffer's first channels.
  static memory padded_copy(const memory::desc& padded, const memory& dense, std::optional<Execution>& reorder,
                            bool into_padded) {
    memory buffer(padded, context().engine);
    std::memset(buffer.get_data_handle(), 0, padded.get_size());
    const memory::desc dense_desc = dense.get_desc();
#if DNNL_VERSION_MAJOR >= 3
    const Dims dims = dense_desc.get_dims();
#else
    const Dims dims = dense_desc.dims();
#endif
    const memory view(padded.submemory_desc(dims, {0, 0, 0, 0}), context().engine, buffer.get_data_handle());
    const memory& from = into_padded ? dense : view;
    const memory& to = into_padded ? view : dense;
    reorder = Execution{dnnl::reorder(from, to), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}};
    return buffer;
  }

  std::unique_ptr<Primitives> build(size_t batch) const {
    auto p = std::make_unique<Primitives>();
    const ActivationShape in = config().input, out = output_shape();
    const memory::desc src = plain_desc(activation_dims(batch, in), Tag::nhwc);
    const memory::desc dst = plain_desc(activation_dims(batch, out), Tag::nhwc);
    p->src = unbound(src);
    p->dst = unbound(dst);
    p->diff_dst = unbound(dst);
    p->diff_src = unbound(src);
    const size_t channels = padded_channels(in.channels);
    const bool padded = channels != in.channels;
    const memory::desc pool_src =
        padded ? plain_desc(activation_dims(batch, {channels, in.height, in.width}), Tag::nhwc) : src;
    const memory::desc pool_dst =
        padded ? plain_desc(activation_dims(batch, {channels, out.height, out.width}), Tag::nhwc) : dst;
    if (padded) {
      p->pool_src = padded_copy(pool_src, p->src, p->pad_input, true);
      p->pool_dst = padded_copy(pool_dst, p->dst, p->unpad_output, false);
      p->pool_diff_dst = padded_copy(pool_dst, p->diff_dst, p->pad_output_grad, true);
      p->pool_diff_src = padded_copy(pool_src, p->diff_src, p->unpad_input_grad, false);
    } else {
      p->pool_src = p->src;
      p->pool_dst = p->dst;
      p->pool_diff_dst = p->diff_dst;
      p->pool_diff_src = p->diff_src;
    }
    const Dims strides{memory::dim(config().stride), memory::dim(config().stride)};
    const Dims kernel{memory::dim(config().kernel), memory::dim(config().kernel)};
    const Dims padding{memory::dim(config().padding), memory::dim(config().padding)};
    p->training_pd = max_pooling_forward_pd(prop_kind::forward_training, pool_src, pool_dst, strides, kernel, padding);
    const auto inference_pd =
        max_pooling_forward_pd(prop_kind::forward_inference, pool_src, pool_dst, strides, kernel, padding);
    const auto backward_pd = max_pooling_backward_pd(pool_src, pool_dst, strides, kernel, padding, p->training_pd);
    p->workspace = unbound(p->training_pd.workspace_desc());
    p->training = {dnnl::pooling_forward(p->training_pd),
                   {{DNNL_ARG_SRC, p->pool_src}, {DNNL_ARG_DST, p->pool_dst}, {DNNL_ARG_WORKSPACE, p->workspace}}};
    p->inference = {dnnl::pooling_forward(inference_pd), {{DNNL_ARG_SRC, p->pool_src}, {DNNL_ARG_DST, p->pool_dst}}};
    p->backward = {dnnl::pooling_backward(backward_pd),
                   {{DNNL_ARG_DIFF_DST, p->pool_diff_dst}, {DNNL_ARG_DIFF_SRC, p->pool_diff_src},
                    {DNNL_ARG_WORKSPACE, p->workspace}}};
    return p;
  }

  mutable PerBatch<Primitives> primitives_;  // workspace_bytes() may build the entry
};

class ReluLayer final : public Layer {
 public:
  explicit ReluLayer(const LayerConfig& config)
      : Layer(config), primitives_([this](size_t batch) { return build(batch); }) {}

  void forward(const ForwardArgs& args) override {
    Primitives& p = primitives_.at(args.batch);
    point(p.src, args.input);
    point(p.dst, args.output);
    p.forward.run();
  }

  void backward(const BackwardArgs& args) override {
    if (!args.input_grad) return;
    Primitives& p = primitives_.at(args.batch);
    point(p.src, args.input);
    point(p.diff_dst, args.output_grad);
    point(p.diff_src, args.input_grad);
    p.backward.run();
  }

 private:
  struct Primitives {
    memory src, dst, diff_dst, diff_src;
    Execution forward, backward;
  };

  std::unique_ptr<Primitives> build(size_t batch) const {
    auto p = std::make_unique<Primitives>();
    // Flat view: relu does not care about the shape, and one dimension is its fastest path.
    const memory::desc data = plain_desc({memory::dim(batch * config().input.elements())}, Tag::x);
    const auto forward_pd = relu_forward_pd(prop_kind::forward_training, data);
    const auto backward_pd = relu_backward_pd(data, data, forward_pd);
    p->src = unbound(data);
    p->dst = unbound(data);
    p->diff_dst = unbound(data);
    p->diff_src = unbound(data);
    p->forward = {dnnl::eltwise_forward(forward_pd), {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_DST, p->dst}}};
    p->backward = {dnnl::eltwise_backward(backward_pd),
                   {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_DIFF_DST, p->diff_dst}, {DNNL_ARG_DIFF_SRC, p->diff_src}}};
    return p;
  }

  PerBatch<Primitives> primitives_;
};

class FullyConnectedLayer final : public ParameterisedLayer {
 public:
  explicit FullyConnectedLayer(const LayerConfig& config)
      : ParameterisedLayer(config), primitives_([this](size_t batch) { return build(batch); }) {}

  void forward(const ForwardArgs& args) override {
    Primitives& p = primitives_.at(args.batch);
    point(p.src, args.input);
    point(p.forward_weights, weights().data());
    if (config().bias) point(p.forward_bias, bias().data());
    point(p.dst, args.output);
    p.forward.run();
  }

  void backward(const BackwardArgs& args) override {
    Primitives& p = primitives_.at(args.batch);
    point(p.diff_dst, args.output_grad);
    if (args.input_grad) {
      if (!p.backward_data) build_backward_data(p, args.batch);
      point(p.weights, weights().data());
      point(p.diff_src, args.input_grad);
      p.backward_data->run();
    }
    if (args.accumulate) return accumulate_gradients(args);
    point(p.src, args.input);
    point(p.diff_weights, weight_grads().data());
    if (config().bias) point(p.diff_bias, bias_grads().data());
    p.backward_weights.run();
  }

 private:
  struct Primitives {
    dnnl::inner_product_forward::primitive_desc forward_pd;  // also the backward primitives' hint
    memory src, weights, dst, diff_dst, diff_src, diff_weights, diff_bias;
    // The weights and bias as the forward primitive reads them (see build()).
    memory forward_weights, forward_bias;
    Execution forward, backward_weights;
    std::optional<Execution> backward_data;
  };

  // The input is seen flattened (N x features), which is the same memory as NHWC.
  memory::desc src_desc(size_t batch) const {
    return plain_desc({memory::dim(batch), memory::dim(config().input.elements())}, Tag::nc);
  }
  memory::desc dst_desc(size_t batch) const {
    return plain_desc({memory::dim(batch), memory::dim(config().outputs.count)}, Tag::nc);
  }
  memory::desc weights_desc() const {
    return plain_desc({memory::dim(config().outputs.count), memory::dim(config().input.elements())}, Tag::oi);
  }
  std::optional<memory::desc> bias_desc() const {
    if (!config().bias) return std::nullopt;
    return plain_desc({memory::dim(config().outputs.count)}, Tag::x);
  }

  std::unique_ptr<Primitives> build(size_t batch) const {
    auto p = std::make_unique<Primitives>();
    const memory::desc src = src_desc(batch), dst = dst_desc(batch), weights = weights_desc();
    p->forward_pd = inner_product_forward_pd(prop_kind::forward_training, src, weights, bias_desc(), dst);
    p->src = unbound(src);
    p->dst = unbound(dst);
    p->weights = unbound(weights);
    p->diff_dst = unbound(dst);
    p->diff_src = unbound(src);
    p->diff_weights = unbound(weights);
    // Forward as a matrix product from a batch of 16 on: there oneDNN's matmul primitive (brgemm)
    // outruns the inner product's GEMM, which is as fast or faster on smaller batches.
    // Both read the weights in place: outputs x inputs is the matmul's inputs x outputs, tag ba.
    const memory::dim inputs = memory::dim(config().input.elements()), outputs = memory::dim(config().outputs.count);
    const bool as_product = batch >= 16;
    const memory::desc forward_weights = as_product ? plain_desc({inputs, outputs}, Tag::ba) : weights;
    std::optional<memory::desc> forward_bias = bias_desc();
    if (forward_bias && as_product) forward_bias = plain_desc({1, outputs}, Tag::ab);
    p->forward_weights = unbound(forward_weights);
    const dnnl::primitive forward =
        as_product ? dnnl::primitive(dnnl::matmul(matmul_pd(src, forward_weights, forward_bias, dst)))
                   : dnnl::primitive(dnnl::inner_product_forward(p->forward_pd));
    p->forward = {forward, {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_WEIGHTS, p->forward_weights}, {DNNL_ARG_DST, p->dst}}};
    const auto weights_pd = inner_product_backward_weights_pd(src, weights, bias_desc(), dst, p->forward_pd);
    p->backward_weights = {dnnl::inner_product_backward_weights(weights_pd),
                           {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_DIFF_DST, p->diff_dst},
                            {DNNL_ARG_DIFF_WEIGHTS, p->diff_weights}}};
    if (forward_bias) {
      p->forward_bias = unbound(*forward_bias);
      p->diff_bias = unbound(*bias_desc());
      p->forward.arguments.emplace(DNNL_ARG_BIAS, p->forward_bias);
      p->backward_weights.arguments.emplace(DNNL_ARG_DIFF_BIAS, p->diff_bias);
    }
    return p;
  }

  void build_backward_data(Primitives& p, size_t batch) const {
    const auto pd = inner_product_backward_data_pd(src_desc(batch), weights_desc(), dst_desc(batch), p.forward_pd);
    p.backward_data = Execution{dnnl::inner_product_backward_data(pd),
                                {{DNNL_ARG_DIFF_DST, p.diff_dst}, {DNNL_ARG_WEIGHTS, p.weights},
                                 {DNNL_ARG_DIFF_SRC, p.diff_src}}};
  }

  // Micro-batches after the first add their gradients to the buffer's (pipeline mode). The inner
  // product primitive cannot accumulate, and its result in scratch added to the buffer costs two
  // more passes over the weight gradients, so a GEMM with beta = 1 adds into the buffer directly.
  void accumulate_gradients(const BackwardArgs& args) {
    const dnnl_dim_t batch = dnnl_dim_t(args.batch), inputs = dnnl_dim_t(config().input.elements()),
                     outputs = dnnl_dim_t(config().outputs.count);
    // weight_grads [outputs][inputs] += output_grad^T [outputs][batch] x input [batch][inputs]
    const dnnl_status_t status = dnnl_sgemm('T', 'N', outputs, inputs, batch, 1.0f, args.output_grad, outputs,
                                            args.input, inputs, 1.0f, weight_grads().data(), inputs);
    if (status != dnnl_success) throw Error("oneDNN sgemm failed (status " + std::to_string(int(status)) + ")");
    if (!config().bias) return;
    // The batch's sum first, then added, as the primitive's diff_bias would be.
    bias_sum_.assign(size_t(outputs), 0.0f);
    for (dnnl_dim_t n = 0; n < batch; ++n) {
      const float* row = args.output_grad + n * outputs;
#pragma omp simd
      for (dnnl_dim_t o = 0; o < outputs; ++o) bias_sum_[size_t(o)] += row[o];
    }
    add_into(bias_grads(), bias_sum_.data());
  }

  PerBatch<Primitives> primitives_;
  std::vector<float> bias_sum_;
};

}  // namespace

std::unique_ptr<Layer> OnednnBackend::make_layer(const LayerConfig& config) {
  switch (config.kind) {
    case LayerKind::convolution:
      return std::make_unique<ConvolutionLayer>(config);
    case LayerKind::max_pool:
      return std::make_unique<MaxPoolLayer>(config);
    case LayerKind::relu:
      return std::make_unique<ReluLayer>(config);
    case LayerKind::fully_connected:
      return std::make_unique<FullyConnectedLayer>(config);
  }
  throw Error("unknown layer kind");
}

std::string onednn_version() {
  const dnnl_version_t* version = dnnl_version();
  return std::to_string(version->major) + "." + std::to_string(version->minor) + "." + std::to_string(version->patch);
}

std::string onednn_cpu_runtime() {
  const dnnl_version_t* version = dnnl_version();
  if (version->cpu_runtime == DNNL_RUNTIME_OMP) return "OpenMP";
  if (version->cpu_runtime == DNNL_RUNTIME_TBB) return "TBB";
  if (version->cpu_runtime == DNNL_RUNTIME_SEQ) return "sequential";
  return "other";
}

std::string onednn_cpu_isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

void set_compute_threads(int threads) { omp_set_num_threads(std::max(1, threads)); }

int compute_threads() { return omp_get_max_threads(); }

}  // namespace cclab::train
