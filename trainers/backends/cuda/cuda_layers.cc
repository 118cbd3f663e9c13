// The GPU's layers. Activations stay NHWC as on the CPU (layer.h), and weights OIHW. cuDNN's
// legacy convolutions and pooling run here on NCHW tensors, the layout whose float algorithms
// cuDNN supports most widely and whose filter layout is OIHW: each call transforms its NHWC input
// to NCHW in scratch (cudnnTransformTensor) and its NCHW result back, a pass over each activation.
// Every call waits for the stream before it returns, so the host code after it (loss, optimizer,
// the modes' collectives) reads finished results; layers keep no state between calls but their
// descriptors' shapes, so several batches may be in flight (pipeline micro-batches).
#include <algorithm>
#include <memory>

#include "backends/cuda/cuda_context.h"
#include "backends/cuda/training_kernels.h"
#include "cclab/error.h"

namespace cclab::train {
namespace {

// cuDNN descriptors, destroyed with their owner.
struct TensorDescriptor {
  const CudaContext& gpu;
  cudnnTensorDescriptor_t descriptor = nullptr;
  // n x c x h x w floats stored in `format` (CUDNN_TENSOR_NHWC or CUDNN_TENSOR_NCHW).
  TensorDescriptor(const CudaContext& context, cudnnTensorFormat_t format, size_t n, size_t c, size_t h, size_t w)
      : gpu(context) {
    gpu.check(gpu.libraries().cudnnCreateTensorDescriptor(&descriptor), "cudnnCreateTensorDescriptor");
    gpu.check(gpu.libraries().cudnnSetTensor4dDescriptor(descriptor, format, CUDNN_DATA_FLOAT, int(n), int(c), int(h),
                                                         int(w)),
              "cudnnSetTensor4dDescriptor");
  }
  ~TensorDescriptor() { gpu.libraries().cudnnDestroyTensorDescriptor(descriptor); }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
};

// Floats to the next 256 bytes: where the next array in a scratch area starts (cuDNN's vectorized
// kernels and workspaces want aligned pointers; cudaMalloc's are 256-byte aligned).
size_t aligned_floats(size_t floats) { return (floats + 63) / 64 * 64; }

// One activation of `batch` samples of `shape` as both layouts, and the transforms between them.
struct Activation {
  TensorDescriptor nhwc, nchw;
  size_t elements;
  size_t stride;  // floats it takes in a scratch area: elements, aligned
  Activation(const CudaContext& gpu, size_t batch, ActivationShape shape)
      : nhwc(gpu, CUDNN_TENSOR_NHWC, batch, shape.channels, shape.height, shape.width),
        nchw(gpu, CUDNN_TENSOR_NCHW, batch, shape.channels, shape.height, shape.width),
        elements(batch * shape.elements()),
        stride(aligned_floats(elements)) {}
};

void to_nchw(const CudaContext& gpu, const Activation& activation, const float* nhwc, float* nchw) {
  const float one = 1.0f, zero = 0.0f;
  gpu.check(gpu.libraries().cudnnTransformTensor(gpu.cudnn(), &one, activation.nhwc.descriptor, nhwc, &zero,
                                                 activation.nchw.descriptor, nchw),
            "cudnnTransformTensor (NHWC to NCHW)");
}

void to_nhwc(const CudaContext& gpu, const Activation& activation, const float* nchw, float* nhwc) {
  const float one = 1.0f, zero = 0.0f;
  gpu.check(gpu.libraries().cudnnTransformTensor(gpu.cudnn(), &one, activation.nchw.descriptor, nchw, &zero,
                                                 activation.nhwc.descriptor, nhwc),
            "cudnnTransformTensor (NCHW to NHWC)");
}

class CudaLayer : public Layer {
 public:
  CudaLayer(const LayerConfig& config, std::shared_ptr<CudaContext> context)
      : Layer(config), context_(std::move(context)) {}

 protected:
  CudaContext& gpu() const { return *context_; }

 private:
  std::shared_ptr<CudaContext> context_;
};

// Cross-correlation, as every framework's "convolution" and the CPU backend's. Deterministic
// algorithms only: implicit GEMM forward, ALGO_1 for both backward passes.
class CudaConvolution final : public CudaLayer {
 public:
  CudaConvolution(const LayerConfig& config, std::shared_ptr<CudaContext> context)
      : CudaLayer(config, std::move(context)) {
    const CudaLibraries& library = gpu().libraries();
    gpu().check(library.cudnnCreateFilterDescriptor(&filter_), "cudnnCreateFilterDescriptor");
    gpu().check(
        library.cudnnSetFilter4dDescriptor(filter_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(config.outputs.count),
                                           int(config.input.channels), int(config.kernel), int(config.kernel)),
        "cudnnSetFilter4dDescriptor");
    gpu().check(library.cudnnCreateConvolutionDescriptor(&convolution_), "cudnnCreateConvolutionDescriptor");
    gpu().check(library.cudnnSetConvolution2dDescriptor(convolution_, int(config.padding), int(config.padding),
                                                        int(config.stride), int(config.stride), 1, 1,
                                                        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor");
    gpu().check(library.cudnnSetConvolutionMathType(convolution_, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType");
    bias_ = std::make_unique<TensorDescriptor>(gpu(), CUDNN_TENSOR_NCHW, 1, config.outputs.count, 1, 1);
  }
  ~CudaConvolution() override {
    gpu().libraries().cudnnDestroyConvolutionDescriptor(convolution_);
    gpu().libraries().cudnnDestroyFilterDescriptor(filter_);
  }

  void forward(const ForwardArgs& args) override {
    if (args.batch == 0) return;
    const CudaLibraries& library = gpu().libraries();
    const Activation in(gpu(), args.batch, input_shape()), out(gpu(), args.batch, output_shape());
    size_t workspace_bytes = 0;
    gpu().check(
        library.cudnnGetConvolutionForwardWorkspaceSize(gpu().cudnn(), in.nchw.descriptor, filter_, convolution_,
                                                        out.nchw.descriptor, kForward, &workspace_bytes),
        "cudnnGetConvolutionForwardWorkspaceSize");
    const auto scratch = gpu().claim_scratch((in.stride + out.stride) * sizeof(float) + workspace_bytes);
    float* x = reinterpret_cast<float*>(scratch.bytes);
    float* y = x + in.stride;
    void* workspace = y + out.stride;
    to_nchw(gpu(), in, args.input, x);
    const float one = 1.0f, zero = 0.0f;
    gpu().check(library.cudnnConvolutionForward(gpu().cudnn(), &one, in.nchw.descriptor, x, filter_, weights().data(),
                                                convolution_, kForward, workspace, workspace_bytes, &zero,
                                                out.nchw.descriptor, y),
                "cudnnConvolutionForward");
    if (config().bias)
      gpu().check(
          library.cudnnAddTensor(gpu().cudnn(), &one, bias_->descriptor, bias().data(), &one, out.nchw.descriptor, y),
          "cudnnAddTensor (bias)");
    to_nhwc(gpu(), out, y, args.output);
    gpu().wait();
  }

  void backward(const BackwardArgs& args) override {
    if (args.batch == 0) return;
    const CudaLibraries& library = gpu().libraries();
    const Activation in(gpu(), args.batch, input_shape()), out(gpu(), args.batch, output_shape());
    size_t filter_bytes = 0, data_bytes = 0;
    gpu().check(
        library.cudnnGetConvolutionBackwardFilterWorkspaceSize(gpu().cudnn(), in.nchw.descriptor, out.nchw.descriptor,
                                                               convolution_, filter_, kBackwardFilter, &filter_bytes),
        "cudnnGetConvolutionBackwardFilterWorkspaceSize");
    if (args.input_grad)
      gpu().check(library.cudnnGetConvolutionBackwardDataWorkspaceSize(gpu().cudnn(), filter_, out.nchw.descriptor,
                                                                       convolution_, in.nchw.descriptor, kBackwardData,
                                                                       &data_bytes),
                  "cudnnGetConvolutionBackwardDataWorkspaceSize");
    const size_t workspace_bytes = std::max(filter_bytes, data_bytes);
    const auto scratch = gpu().claim_scratch((in.stride + out.stride) * sizeof(float) + workspace_bytes);
    // x and dx share scratch: x is read by the filter gradient, which runs first on the stream.
    float* x = reinterpret_cast<float*>(scratch.bytes);
    float* dy = x + in.stride;
    void* workspace = dy + out.stride;
    to_nchw(gpu(), in, args.input, x);
    to_nchw(gpu(), out, args.output_grad, dy);
    const float one = 1.0f, zero = 0.0f;
    const float* keep = args.accumulate ? &one : &zero;
    gpu().check(library.cudnnConvolutionBackwardFilter(gpu().cudnn(), &one, in.nchw.descriptor, x, out.nchw.descriptor,
                                                       dy, convolution_, kBackwardFilter, workspace, workspace_bytes,
                                                       keep, filter_, weight_grads().data()),
                "cudnnConvolutionBackwardFilter");
    if (config().bias)
      gpu().check(library.cudnnConvolutionBackwardBias(gpu().cudnn(), &one, out.nchw.descriptor, dy, keep,
                                                       bias_->descriptor, bias_grads().data()),
                  "cudnnConvolutionBackwardBias");
    if (args.input_grad) {
      float* dx = x;
      gpu().check(library.cudnnConvolutionBackwardData(gpu().cudnn(), &one, filter_, weights().data(),
                                                       out.nchw.descriptor, dy, convolution_, kBackwardData, workspace,
                                                       workspace_bytes, &zero, in.nchw.descriptor, dx),
                  "cudnnConvolutionBackwardData");
      to_nhwc(gpu(), in, dx, args.input_grad);
    }
    gpu().wait();
  }

 private:
  static constexpr cudnnConvolutionFwdAlgo_t kForward = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  static constexpr cudnnConvolutionBwdFilterAlgo_t kBackwardFilter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  static constexpr cudnnConvolutionBwdDataAlgo_t kBackwardData = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;

  cudnnFilterDescriptor_t filter_ = nullptr;
  cudnnConvolutionDescriptor_t convolution_ = nullptr;
  std::unique_ptr<TensorDescriptor> bias_;
};

// Max pooling (deterministic backward, padding never wins). A training forward pass keeps its NCHW
// input and output in the layer's workspace for the backward pass, which cuDNN needs both of.
class CudaMaxPool final : public CudaLayer {
 public:
  CudaMaxPool(const LayerConfig& config, std::shared_ptr<CudaContext> context) : CudaLayer(config, std::move(context)) {
    const CudaLibraries& library = gpu().libraries();
    gpu().check(library.cudnnCreatePoolingDescriptor(&pooling_), "cudnnCreatePoolingDescriptor");
    gpu().check(library.cudnnSetPooling2dDescriptor(pooling_, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_NOT_PROPAGATE_NAN,
                                                    int(config.kernel), int(config.kernel), int(config.padding),
                                                    int(config.padding), int(config.stride), int(config.stride)),
                "cudnnSetPooling2dDescriptor");
  }
  ~CudaMaxPool() override { gpu().libraries().cudnnDestroyPoolingDescriptor(pooling_); }

  size_t workspace_bytes(size_t batch) const override {
    return (aligned_floats(batch * input_shape().elements()) + batch * output_shape().elements()) * sizeof(float);
  }

  void forward(const ForwardArgs& args) override {
    if (args.batch == 0) return;
    const Activation in(gpu(), args.batch, input_shape()), out(gpu(), args.batch, output_shape());
    const auto scratch = gpu().claim_scratch(args.workspace ? 0 : (in.stride + out.stride) * sizeof(float));
    float* x = reinterpret_cast<float*>(args.workspace ? args.workspace : scratch.bytes);
    float* y = x + in.stride;
    to_nchw(gpu(), in, args.input, x);
    const float one = 1.0f, zero = 0.0f;
    gpu().check(gpu().libraries().cudnnPoolingForward(gpu().cudnn(), pooling_, &one, in.nchw.descriptor, x, &zero,
                                                      out.nchw.descriptor, y),
                "cudnnPoolingForward");
    to_nhwc(gpu(), out, y, args.output);
    gpu().wait();
  }

  void backward(const BackwardArgs& args) override {
    if (args.batch == 0 || !args.input_grad) return;
    if (!args.workspace) throw Error("max pooling's backward pass needs its forward pass's workspace");
    const Activation in(gpu(), args.batch, input_shape()), out(gpu(), args.batch, output_shape());
    const auto scratch = gpu().claim_scratch((in.stride + out.stride) * sizeof(float));
    const float* x = reinterpret_cast<const float*>(args.workspace);
    const float* y = x + in.stride;
    float* dy = reinterpret_cast<float*>(scratch.bytes);
    float* dx = dy + out.stride;
    to_nchw(gpu(), out, args.output_grad, dy);
    const float one = 1.0f, zero = 0.0f;
    gpu().check(gpu().libraries().cudnnPoolingBackward(gpu().cudnn(), pooling_, &one, out.nchw.descriptor, y,
                                                       out.nchw.descriptor, dy, in.nchw.descriptor, x, &zero,
                                                       in.nchw.descriptor, dx),
                "cudnnPoolingBackward");
    to_nhwc(gpu(), in, dx, args.input_grad);
    gpu().wait();
  }

 private:
  cudnnPoolingDescriptor_t pooling_ = nullptr;
};

class CudaRelu final : public CudaLayer {
 public:
  using CudaLayer::CudaLayer;

  void forward(const ForwardArgs& args) override {
    gpu().make_current();
    cuda_kernels::relu_forward(args.input, args.output, args.batch * input_shape().elements(), gpu().stream());
    gpu().wait();
  }

  void backward(const BackwardArgs& args) override {
    if (!args.input_grad) return;
    gpu().make_current();
    cuda_kernels::relu_backward(args.input, args.output_grad, args.input_grad, args.batch * input_shape().elements(),
                                gpu().stream());
    gpu().wait();
  }
};

// output[N][out] = input[N][in] x weights[out][in]^T + bias, all row-major. cuBLAS is column-major:
// a row-major [a][b] array is its b x a column-major matrix, so each product below is written for
// the transposes (out x N = W^T(out x in) * X'(in x N), and so on).
class CudaFullyConnected final : public CudaLayer {
 public:
  using CudaLayer::CudaLayer;

  void forward(const ForwardArgs& args) override {
    if (args.batch == 0) return;
    const int in = int(input_shape().elements()), out = int(output_shape().elements()), n = int(args.batch);
    const float one = 1.0f, zero = 0.0f;
    gpu().make_current();
    gpu().check(gpu().libraries().cublasSgemm_v2(gpu().cublas(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one,
                                                 weights().data(), in, args.input, in, &zero, args.output, out),
                "cublasSgemm (fc forward)");
    if (config().bias)
      cuda_kernels::add_bias_to_rows(args.output, bias().data(), args.batch, size_t(out), gpu().stream());
    gpu().wait();
  }

  void backward(const BackwardArgs& args) override {
    if (args.batch == 0) return;
    const int in = int(input_shape().elements()), out = int(output_shape().elements()), n = int(args.batch);
    const float one = 1.0f, zero = 0.0f;
    const float* keep = args.accumulate ? &one : &zero;
    gpu().make_current();
    // dW (in x out column-major = [out][in] row-major) = X'(in x N) * dY'(out x N)^T.
    gpu().check(gpu().libraries().cublasSgemm_v2(gpu().cublas(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, args.input,
                                                 in, args.output_grad, out, keep, weight_grads().data(), in),
                "cublasSgemm (fc weight gradient)");
    if (config().bias)
      cuda_kernels::sum_rows(args.output_grad, bias_grads().data(), args.batch, size_t(out), args.accumulate,
                             gpu().stream());
    // dX'(in x N) = W(in x out column-major) * dY'(out x N).
    if (args.input_grad)
      gpu().check(
          gpu().libraries().cublasSgemm_v2(gpu().cublas(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, weights().data(),
                                           in, args.output_grad, out, &zero, args.input_grad, in),
          "cublasSgemm (fc input gradient)");
    gpu().wait();
  }
};

}  // namespace

std::unique_ptr<Layer> make_cuda_layer(const LayerConfig& config, std::shared_ptr<CudaContext> context) {
  switch (config.kind) {
    case LayerKind::convolution:
      return std::make_unique<CudaConvolution>(config, std::move(context));
    case LayerKind::max_pool:
      return std::make_unique<CudaMaxPool>(config, std::move(context));
    case LayerKind::relu:
      return std::make_unique<CudaRelu>(config, std::move(context));
    case LayerKind::fully_connected:
      return std::make_unique<CudaFullyConnected>(config, std::move(context));
  }
  throw Error("unknown layer kind");
}

}  // namespace cclab::train
