// Layers of the reference CNN trainers: what a layer is (LayerConfig), what it computes (Layer),
// and who builds it (Backend). See model.h for how layers compose into a Model and how the
// parallel modes use these pieces.
//
// Memory conventions, shared by every backend so that buffers can be handed around between layers,
// ranks and backends without reformatting:
//   - activations are plain NHWC (channels-last) float32, contiguous, batch outermost. NHWC rather
//     than NCHW because oneDNN's jit convolutions and pooling run on it directly on AVX2 (with NCHW,
//     pooling falls back to a simple loop and convolutions to im2col + GEMM: 1.6x slower LeNet-5
//     steps, measured). A fully connected layer sees its input flattened in memory order,
//     feature = (h*W + w)*C + c, and produces N x features (features x 1 x 1);
//   - convolution weights are OIHW, fully connected weights are [out][in] with `in` in that
//     flattened order, biases [out]; weights first, then the bias, in one contiguous run of the
//     model's flat parameter buffer. (Backends may reorder weights internally; the buffer stays plain.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace cclab::train {

/// Per-sample shape of an activation. Fully connected activations are features x 1 x 1.
struct ActivationShape {
  size_t channels = 0, height = 1, width = 1;

  size_t elements() const { return channels * height * width; }
  bool operator==(const ActivationShape&) const = default;
  /// "1x28x28"
  std::string to_string() const;
};

/// The part [begin, begin + count) of `total` channels or features that one layer instance owns.
/// Whole layers have begin 0 and count == total; tensor-parallel layers own a slice.
struct Slice {
  size_t begin = 0, count = 0, total = 0;

  static Slice whole(size_t total) { return {0, total, total}; }
  bool is_whole() const { return begin == 0 && count == total; }
  /// Part `part` of `parts` near-equal contiguous pieces of this slice: the first count % parts pieces
  /// hold one element more than the others (Megatron and DeepSpeed split uneven dimensions the same way).
  Slice piece(size_t part, size_t parts) const;
  bool operator==(const Slice&) const = default;
};

enum class LayerKind { convolution, max_pool, relu, fully_connected };

/// Everything needed to build one layer instance, independent of the backend. The spec parser makes
/// one per layer of the whole model; a parallel mode may then keep a range of them (pipeline stage)
/// or replace one by a slice of itself (column_slice / row_slice, tensor-parallel).
struct LayerConfig {
  LayerKind kind = LayerKind::relu;
  /// Position in the whole, unsplit model. Initial values are a function of (seed, index, the
  /// element's position in the whole layer), so every split of a model starts from the same weights.
  size_t index = 0;
  /// What this instance receives per sample (already sliced where an upstream layer is sliced).
  ActivationShape input;
  /// Convolution and pooling: square kernel, stride and symmetric zero padding.
  size_t kernel = 1, stride = 1, padding = 0;
  /// Convolution: output channels; fully connected: output features. Unused by pool and relu.
  Slice outputs;
  /// Input channels (an fc reading features x 1 x 1 counts features as channels). Whole unless the
  /// layer is row-split (tensor-parallel), in which case `input` holds only this slice of channels.
  Slice inputs;
  /// Whether this instance adds the bias (a row-split layer adds it on one part only).
  bool bias = true;

  ActivationShape output() const;
  /// Elements of the weights and of the bias of this instance (0 for pool and relu).
  size_t weight_count() const;
  size_t bias_count() const;
  size_t parameter_count() const { return weight_count() + bias_count(); }
  /// Fan-in of the whole layer (inputs.total x kernel area, or x H x W for an fc), which sets the
  /// initial value range.
  size_t fan_in() const;
  /// Spec-grammar name, with the slice when there is one: "conv5x5:32", "fc:1024[0:512]".
  std::string name() const;
};

/// Column split (Megatron): part `part` of `parts` owns a contiguous slice of the output channels or
/// features of a convolution or fully connected layer; the full output is the concatenation of every
/// part's output along channels (an allgather; with NHWC activations each part's piece of a sample
/// is strided, innermost: gather, then interleave, or use oneDNN's concat). Parts differ by at most
/// one output (Slice::piece); throws UsageError if some part would be empty.
LayerConfig column_slice(const LayerConfig& layer, size_t part, size_t parts);
/// Row split: part `part` owns a contiguous slice of the input channels and receives only that slice
/// of the input (exactly what the matching column-split layer before it produces); the full output
/// is the sum (an allreduce) of every part's output. Only part 0 adds the bias. The input channels
/// split as column_slice splits the outputs of the layer before, so the two slices match.
LayerConfig row_slice(const LayerConfig& layer, size_t part, size_t parts);

/// One forward pass over a batch. Pointers are NHWC buffers of batch x shape elements.
struct ForwardArgs {
  const float* input = nullptr;
  float* output = nullptr;
  /// workspace_bytes(batch) bytes that this pass fills and the matching backward pass reads (max
  /// pooling keeps its argmax there). One per batch in flight, owned by the caller (Activations).
  std::byte* workspace = nullptr;
  size_t batch = 0;
  /// Inference skips what only backward needs.
  bool training = true;
};

/// One backward pass over the batch of the last training forward pass that used `workspace`.
struct BackwardArgs {
  const float* input = nullptr;
  const float* output = nullptr;
  const float* output_grad = nullptr;
  /// Gradient w.r.t. the input, overwritten; null when nobody needs it (the model's first layer).
  float* input_grad = nullptr;
  std::byte* workspace = nullptr;
  size_t batch = 0;
  /// Add this batch's parameter gradients to the gradient buffer instead of overwriting it
  /// (micro-batches, gradient accumulation).
  bool accumulate = false;
};

/// A layer instance. Parameters and gradients are not owned: the Model binds each layer to its run
/// of the model's flat buffers. Apart from parameters and cached primitives a layer keeps no state
/// between calls; everything a backward pass needs comes in BackwardArgs, so several batches can be
/// in flight at once (pipeline micro-batches).
class Layer {
 public:
  explicit Layer(LayerConfig config) : config_(std::move(config)) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const LayerConfig& config() const { return config_; }
  ActivationShape input_shape() const { return config_.input; }
  ActivationShape output_shape() const { return config_.output(); }
  size_t parameter_count() const { return config_.parameter_count(); }

  /// Points the layer at its parameter_count() elements of the flat parameter and gradient buffers.
  void bind(std::span<float> parameters, std::span<float> gradients);
  std::span<float> weights() const { return parameters_.first(config_.weight_count()); }
  std::span<float> bias() const { return parameters_.subspan(config_.weight_count()); }
  std::span<float> weight_grads() const { return gradients_.first(config_.weight_count()); }
  std::span<float> bias_grads() const { return gradients_.subspan(config_.weight_count()); }

  /// Workspace a training forward pass of `batch` samples needs (0 for most layers).
  virtual size_t workspace_bytes(size_t /*batch*/) const { return 0; }
  virtual void forward(const ForwardArgs& args) = 0;
  virtual void backward(const BackwardArgs& args) = 0;

 private:
  LayerConfig config_;
  std::span<float> parameters_, gradients_;
};

/// Builds layer instances on one kind of hardware/library (oneDNN on the CPU, cuDNN and cuBLAS on a
/// GPU; the plain C++ reference backend exists for tests).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual std::unique_ptr<Layer> make_layer(const LayerConfig& config) = 0;
  /// Whether the layers can read any host memory, node-shared segments included (a GPU's layers
  /// read only the run's own buffers, compute_device.h).
  virtual bool reads_host_memory() const { return true; }
};

}  // namespace cclab::train
