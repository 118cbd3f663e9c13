// The GPU as the run's compute device: every buffer in CUDA managed memory (the host's loaders,
// collectives and checkpoints and the GPU's layers address the same arrays; pages move to whoever
// touches them), the loss and the SGD update as kernels on the layers' stream.
#include <algorithm>
#include <mutex>

#include "backends/cuda/cuda_context.h"
#include "backends/cuda/training_kernels.h"
#include "cclab/error.h"

namespace cclab::train {
namespace {

// Managed or device memory: what a kernel may touch. Host memory of the run's own (a stack array,
// a std::vector, a node-shared segment) is not, and its work stays on the host.
bool gpu_addressable(const void* pointer) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, pointer) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "invalid value" of an unknown pointer
    return false;
  }
  return attributes.type == cudaMemoryTypeManaged || attributes.type == cudaMemoryTypeDevice;
}

template <class T>
void reallocate_managed(T*& array, size_t count) {
  if (array) check_cuda(cudaFree(array), "cudaFree");
  array = nullptr;
  check_cuda(cudaMallocManaged(&array, count * sizeof(T)), "cudaMallocManaged (loss rows)");
}

class CudaComputeDevice : public ComputeDevice {
 public:
  explicit CudaComputeDevice(std::shared_ptr<CudaContext> context) : context_(std::move(context)) {}
  ~CudaComputeDevice() override {
    cudaFree(labels_);
    cudaFree(row_loss_);
    cudaFree(row_correct_);
  }

  std::string name() const override { return context_->name(); }

  void* allocate(size_t bytes) override {
    context_->make_current();
    void* memory = nullptr;
    if (cudaMallocManaged(&memory, bytes) != cudaSuccess) {
      cudaGetLastError();
      throw std::bad_alloc();
    }
    return memory;  // 256-byte aligned
  }

  void release(void* pointer) override {
    // The stream may still use the memory (the layers wait at the end of every call, so this is
    // the last kernel's tail at most).
    cudaStreamSynchronize(context_->stream());
    cudaFree(pointer);
  }

  std::optional<LossResult> softmax_cross_entropy(const float* scores, const int32_t* labels, size_t batch,
                                                  size_t classes, float* scores_grad, double normaliser) override {
    if (batch == 0 || !gpu_addressable(scores) || (scores_grad && !gpu_addressable(scores_grad))) return std::nullopt;
    for (size_t n = 0; n < batch; ++n)
      if (labels[n] < 0 || static_cast<size_t>(labels[n]) >= classes)
        throw Error("label " + std::to_string(labels[n]) + " is outside the model's " + std::to_string(classes) +
                    " classes");
    std::lock_guard lock(mutex_);
    context_->make_current();
    if (batch > rows_) {  // the loss's arrays, one row per sample
      reallocate_managed(labels_, batch);
      reallocate_managed(row_loss_, batch);
      reallocate_managed(row_correct_, batch);
      rows_ = batch;
    }
    std::copy(labels, labels + batch, labels_);
    cuda_kernels::softmax_cross_entropy(scores, labels_, batch, classes, scores_grad, 1.0 / normaliser, row_loss_,
                                        row_correct_, context_->stream());
    context_->wait();
    LossResult result;
    for (size_t n = 0; n < batch; ++n) {  // in row order, as the host loop sums
      result.loss_sum += row_loss_[n];
      result.correct += size_t(row_correct_[n]);
    }
    return result;
  }

  bool sgd_momentum(std::span<float> values, std::span<const float> gradients, std::span<float> velocity,
                    float learning_rate, float momentum) override {
    if (values.empty() || !gpu_addressable(values.data()) || !gpu_addressable(gradients.data()) ||
        !gpu_addressable(velocity.data()))
      return false;
    context_->make_current();
    cuda_kernels::sgd_momentum(values.data(), gradients.data(), velocity.data(), values.size(), learning_rate, momentum,
                               context_->stream());
    context_->wait();
    return true;
  }

 private:
  std::shared_ptr<CudaContext> context_;
  std::mutex mutex_;  // the loss's arrays
  int32_t* labels_ = nullptr;
  double* row_loss_ = nullptr;
  int32_t* row_correct_ = nullptr;
  size_t rows_ = 0;  // what the three arrays hold
};

}  // namespace

std::shared_ptr<ComputeDevice> make_cuda_compute_device(std::shared_ptr<CudaContext> context) {
  return std::make_shared<CudaComputeDevice>(std::move(context));
}

}  // namespace cclab::train
