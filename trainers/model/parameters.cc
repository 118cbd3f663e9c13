#include "model/parameters.h"

#include <algorithm>
#include <cmath>

#include "cclab/error.h"
#include "model/random.h"

namespace cclab::train {

ParameterStore::ParameterStore(const std::vector<size_t>& counts) : ranges_(counts.size()) {
  size_t offset = 0;
  for (size_t layer = counts.size(); layer-- > 0;) {
    ranges_[layer] = {layer, offset, counts[layer]};
    offset += counts[layer];
  }
  owned_values_.assign(offset, 0.0f);
  owned_gradients_.assign(offset, 0.0f);
  values_ = owned_values_;
  gradients_ = owned_gradients_;
}

void ParameterStore::place(std::span<float> values, std::span<float> gradients) {
  if (values.size() != size() || gradients.size() != size())
    throw Error("parameter store: placing " + std::to_string(size()) + " parameters into " +
                std::to_string(values.size()) + " and " + std::to_string(gradients.size()) + " floats");
  std::copy(values_.begin(), values_.end(), values.begin());
  std::copy(gradients_.begin(), gradients_.end(), gradients.begin());
  values_ = values;
  gradients_ = gradients;
  owned_values_ = FloatBuffer();
  owned_gradients_ = FloatBuffer();
}

std::vector<ParameterRange> ParameterStore::backward_order() const {
  std::vector<ParameterRange> order;
  for (size_t layer = ranges_.size(); layer-- > 0;)
    if (ranges_[layer].count > 0) order.push_back(ranges_[layer]);
  return order;
}

void ParameterStore::zero_gradients() { std::fill(gradients_.begin(), gradients_.end(), 0.0f); }

void initialize_layer(const LayerConfig& layer, uint64_t seed, std::span<float> weights, std::span<float> bias) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(std::max<size_t>(layer.fan_in(), 1)));
  // Streams: 2 * layer index for weights, + 1 for the bias.
  const uint64_t weight_stream = 2 * static_cast<uint64_t>(layer.index), bias_stream = weight_stream + 1;
  auto value = [&](uint64_t stream, uint64_t global_index) {
    return (2.0f * uniform01(random_bits(seed, stream, global_index)) - 1.0f) * bound;
  };
  // Where local weight `at` of this (possibly sliced) instance sits in the whole layer: output o is
  // global outputs.begin + o and input channel i is global inputs.begin + i. Convolution weights are
  // [o][i][ky][kx] (the window innermost); fc weights are [o][(h*W + w)*C + i] (the channel
  // innermost, as NHWC flattens), so a channel slice of an fc is strided in the whole layer.
  const size_t local_channels = layer.input.channels, total_channels = layer.inputs.total;
  const bool convolution = layer.kind == LayerKind::convolution;
  const size_t window = convolution ? layer.kernel * layer.kernel : layer.input.height * layer.input.width;
  size_t at = 0;
  for (size_t o = 0; o < layer.outputs.count && at < weights.size(); ++o) {
    const uint64_t row = (layer.outputs.begin + o) * total_channels * window;
    if (convolution) {
      for (size_t i = 0; i < local_channels; ++i)
        for (size_t r = 0; r < window; ++r, ++at)
          weights[at] = value(weight_stream, row + (layer.inputs.begin + i) * window + r);
    } else {
      for (size_t r = 0; r < window; ++r)
        for (size_t i = 0; i < local_channels; ++i, ++at)
          weights[at] = value(weight_stream, row + r * total_channels + layer.inputs.begin + i);
    }
  }
  for (size_t o = 0; o < bias.size(); ++o) bias[o] = value(bias_stream, layer.outputs.begin + o);
}

}  // namespace cclab::train
