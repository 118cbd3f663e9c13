// Softmax cross-entropy over class scores (plain C++: it is a few thousand elements per step).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cclab::train {

struct LossResult {
  double loss_sum = 0;  // sum over the batch of -log softmax(score)[label]
  size_t correct = 0;   // samples whose highest score is their label (ties: lowest class wins)
};

/// Loss of `batch` rows of `classes` scores against `labels`. When `scores_grad` is not null it gets
/// d(loss_sum / normaliser)/d(scores) = (softmax - one_hot) / normaliser. Pass the GLOBAL batch size
/// as normaliser: a rank holding a shard of the batch then computes its exact share of the gradient
/// of the global mean loss, and the shares sum to the single-process gradient.
LossResult softmax_cross_entropy(const float* scores, const int32_t* labels, size_t batch, size_t classes,
                                 float* scores_grad, double normaliser);

}  // namespace cclab::train
