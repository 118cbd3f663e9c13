#include <algorithm>
#include <stdexcept>
#include <string>

#include "backends/cuda/training_kernels.h"

namespace cclab::train::cuda_kernels {
namespace {

constexpr int kThreads = 256;

// Grid-stride loops: a grid sized for the count, capped so that huge counts loop instead.
unsigned blocks_for(size_t count) {
  return static_cast<unsigned>(std::clamp<size_t>((count + kThreads - 1) / kThreads, 1, 65535));
}

void check_launch(const char* kernel) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) throw std::runtime_error(std::string(kernel) + ": " + cudaGetErrorString(error));
}

__global__ void relu_forward_kernel(const float* input, float* output, size_t count) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    output[i] = input[i] > 0.0f ? input[i] : 0.0f;
}

__global__ void relu_backward_kernel(const float* input, const float* output_grad, float* input_grad, size_t count) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    input_grad[i] = input[i] > 0.0f ? output_grad[i] : 0.0f;
}

__global__ void add_bias_kernel(float* values, const float* bias, size_t rows, size_t features) {
  const size_t count = rows * features;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    values[i] += bias[i % features];
}

__global__ void sum_rows_kernel(const float* values, float* sums, size_t rows, size_t features, bool accumulate) {
  for (size_t f = blockIdx.x * size_t(blockDim.x) + threadIdx.x; f < features; f += size_t(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (size_t r = 0; r < rows; ++r) sum += values[r * features + f];
    sums[f] = accumulate ? sums[f] + sum : sum;
  }
}

// One thread per sample: a few classes each, the same double-precision steps as the CPU loop.
__global__ void softmax_cross_entropy_kernel(const float* scores, const int32_t* labels, size_t batch, size_t classes,
                                             float* scores_grad, double scale, double* row_loss, int32_t* row_correct) {
  for (size_t n = blockIdx.x * size_t(blockDim.x) + threadIdx.x; n < batch; n += size_t(gridDim.x) * blockDim.x) {
    const float* row = scores + n * classes;
    const size_t label = static_cast<size_t>(labels[n]);
    size_t best = 0;
    for (size_t c = 1; c < classes; ++c)
      if (row[c] > row[best]) best = c;
    const double shift = row[best];
    double sum = 0;
    for (size_t c = 0; c < classes; ++c) sum += exp(double(row[c]) - shift);
    const double log_sum = log(sum);
    row_loss[n] = log_sum - (double(row[label]) - shift);
    row_correct[n] = best == label;
    if (scores_grad) {
      float* grad = scores_grad + n * classes;
      for (size_t c = 0; c < classes; ++c) {
        const double probability = exp(double(row[c]) - shift - log_sum);
        grad[c] = static_cast<float>((probability - (c == label ? 1.0 : 0.0)) * scale);
      }
    }
  }
}

__global__ void sgd_momentum_kernel(float* values, const float* gradients, float* velocity, size_t count,
                                    float learning_rate, float momentum) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    const float v = momentum * velocity[i] + gradients[i];
    velocity[i] = v;
    values[i] -= learning_rate * v;
  }
}

}  // namespace

std::string unavailable_on_current_device() {
  cudaFuncAttributes attributes{};
  const cudaError_t status = cudaFuncGetAttributes(&attributes, relu_forward_kernel);
  if (status == cudaSuccess) return "";
  cudaGetLastError();
  return std::string("the GPU cannot run this build's kernels (") + cudaGetErrorString(status) + ")";
}

void relu_forward(const float* input, float* output, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  relu_forward_kernel<<<blocks_for(count), kThreads, 0, stream>>>(input, output, count);
  check_launch("relu forward");
}

void relu_backward(const float* input, const float* output_grad, float* input_grad, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  relu_backward_kernel<<<blocks_for(count), kThreads, 0, stream>>>(input, output_grad, input_grad, count);
  check_launch("relu backward");
}

void add_bias_to_rows(float* values, const float* bias, size_t rows, size_t features, cudaStream_t stream) {
  if (rows * features == 0) return;
  add_bias_kernel<<<blocks_for(rows * features), kThreads, 0, stream>>>(values, bias, rows, features);
  check_launch("bias");
}

void sum_rows(const float* values, float* sums, size_t rows, size_t features, bool accumulate, cudaStream_t stream) {
  if (features == 0) return;
  sum_rows_kernel<<<blocks_for(features), kThreads, 0, stream>>>(values, sums, rows, features, accumulate);
  check_launch("bias gradient");
}

void softmax_cross_entropy(const float* scores, const int32_t* labels, size_t batch, size_t classes, float* scores_grad,
                           double scale, double* row_loss, int32_t* row_correct, cudaStream_t stream) {
  if (batch == 0) return;
  softmax_cross_entropy_kernel<<<blocks_for(batch), kThreads, 0, stream>>>(scores, labels, batch, classes, scores_grad,
                                                                           scale, row_loss, row_correct);
  check_launch("softmax cross-entropy");
}

void sgd_momentum(float* values, const float* gradients, float* velocity, size_t count, float learning_rate,
                  float momentum, cudaStream_t stream) {
  if (count == 0) return;
  sgd_momentum_kernel<<<blocks_for(count), kThreads, 0, stream>>>(values, gradients, velocity, count, learning_rate,
                                                                  momentum);
  check_launch("SGD update");
}

}  // namespace cclab::train::cuda_kernels
