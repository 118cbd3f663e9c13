// The GPU backend's own kernels: what cuDNN and cuBLAS do not do for it (relu, the fc bias, the
// loss, the SGD update). Each launches on `stream` and returns at once; a launch error throws.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace cclab::train::cuda_kernels {

/// Why these kernels cannot run on the current GPU ("" when they can): the build has no code for
/// its architecture.
std::string unavailable_on_current_device();

/// output = max(input, 0), as the CPU backend computes it.
void relu_forward(const float* input, float* output, size_t count, cudaStream_t stream);
/// input_grad = output_grad where input > 0, else 0.
void relu_backward(const float* input, const float* output_grad, float* input_grad, size_t count, cudaStream_t stream);
/// rows x features row-major `values`: values[r][f] += bias[f].
void add_bias_to_rows(float* values, const float* bias, size_t rows, size_t features, cudaStream_t stream);
/// sums[f] (= or +=) sum over r of values[r][f], each column summed in row order.
void sum_rows(const float* values, float* sums, size_t rows, size_t features, bool accumulate, cudaStream_t stream);
/// softmax_cross_entropy (loss.h) per row: row_loss[n] and row_correct[n], and the gradient when
/// `scores_grad` is not null; the caller sums the rows in order, as the CPU loop does.
void softmax_cross_entropy(const float* scores, const int32_t* labels, size_t batch, size_t classes, float* scores_grad,
                           double scale, double* row_loss, int32_t* row_correct, cudaStream_t stream);
/// velocity = momentum * velocity + gradient; value -= learning_rate * velocity.
void sgd_momentum(float* values, const float* gradients, float* velocity, size_t count, float learning_rate,
                  float momentum, cudaStream_t stream);

}  // namespace cclab::train::cuda_kernels
