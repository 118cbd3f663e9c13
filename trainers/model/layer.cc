#include "model/layer.h"

#include <algorithm>

#include "cclab/error.h"

namespace cclab::train {

Slice Slice::piece(size_t part, size_t parts) const {
  const size_t base = count / parts, longer = count % parts;
  return {begin + part * base + std::min(part, longer), base + (part < longer ? 1 : 0), total};
}

std::string ActivationShape::to_string() const {
  return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width);
}

ActivationShape LayerConfig::output() const {
  switch (kind) {
    case LayerKind::convolution:
    case LayerKind::max_pool: {
      // Floor division, as every framework: a window that would start past the padded edge is dropped.
      const size_t height_out = (input.height + 2 * padding - kernel) / stride + 1;
      const size_t width_out = (input.width + 2 * padding - kernel) / stride + 1;
      const size_t channels = kind == LayerKind::convolution ? outputs.count : input.channels;
      return {channels, height_out, width_out};
    }
    case LayerKind::relu:
      return input;
    case LayerKind::fully_connected:
      return {outputs.count, 1, 1};
  }
  return input;
}

size_t LayerConfig::weight_count() const {
  switch (kind) {
    case LayerKind::convolution:
      return outputs.count * input.channels * kernel * kernel;
    case LayerKind::fully_connected:
      return outputs.count * input.elements();
    default:
      return 0;
  }
}

size_t LayerConfig::bias_count() const {
  const bool has_parameters = kind == LayerKind::convolution || kind == LayerKind::fully_connected;
  return has_parameters && bias ? outputs.count : 0;
}

size_t LayerConfig::fan_in() const {
  switch (kind) {
    case LayerKind::convolution:
      return inputs.total * kernel * kernel;
    case LayerKind::fully_connected:
      return inputs.total * input.height * input.width;
    default:
      return 0;
  }
}

std::string LayerConfig::name() const {
  std::string text;
  const std::string k = std::to_string(kernel);
  switch (kind) {
    case LayerKind::convolution:
      text = "conv" + k + "x" + k + ":" + std::to_string(outputs.total);
      if (stride != 1) text += ":s" + std::to_string(stride);
      if (padding != (kernel - 1) / 2) text += ":p" + std::to_string(padding);
      break;
    case LayerKind::max_pool:
      text = "pool" + k;
      if (stride != kernel) text += ":s" + std::to_string(stride);
      if (padding != 0) text += ":p" + std::to_string(padding);
      break;
    case LayerKind::relu:
      text = "relu";
      break;
    case LayerKind::fully_connected:
      text = "fc:" + std::to_string(outputs.total);
      break;
  }
  if (!outputs.is_whole() && (kind == LayerKind::convolution || kind == LayerKind::fully_connected))
    text += "[out " + std::to_string(outputs.begin) + ":" + std::to_string(outputs.begin + outputs.count) + "]";
  if (!inputs.is_whole())
    text += "[in " + std::to_string(inputs.begin) + ":" + std::to_string(inputs.begin + inputs.count) + "]";
  return text;
}

namespace {

void require_splittable(const LayerConfig& layer, size_t part, size_t parts, size_t count, const char* what) {
  if (layer.kind != LayerKind::convolution && layer.kind != LayerKind::fully_connected)
    throw UsageError("layer " + std::to_string(layer.index) + " (" + layer.name() +
                     ") has no parameters to split tensor-parallel");
  if (parts == 0 || part >= parts)
    throw UsageError("tensor-parallel part " + std::to_string(part) + " of " + std::to_string(parts) +
                     " does not exist");
  if (count < parts)
    throw UsageError("layer " + std::to_string(layer.index) + " (" + layer.name() + ") has " + std::to_string(count) +
                     " " + what + ", too few to give each of " + std::to_string(parts) + " parts one");
}

}  // namespace

LayerConfig column_slice(const LayerConfig& layer, size_t part, size_t parts) {
  require_splittable(layer, part, parts, layer.outputs.count, "outputs");
  LayerConfig slice = layer;
  slice.outputs = layer.outputs.piece(part, parts);
  return slice;
}

LayerConfig row_slice(const LayerConfig& layer, size_t part, size_t parts) {
  // Both kinds split by input channel; for an fc reading features x 1 x 1 a channel is a feature.
  require_splittable(layer, part, parts, layer.inputs.count, "input channels");
  LayerConfig slice = layer;
  slice.inputs = layer.inputs.piece(part, parts);
  slice.input.channels = slice.inputs.count;
  slice.bias = layer.bias && part == 0;
  return slice;
}

void Layer::bind(std::span<float> parameters, std::span<float> gradients) {
  if (parameters.size() != parameter_count() || gradients.size() != parameter_count())
    throw Error("layer " + config_.name() + " needs " + std::to_string(parameter_count()) +
                " parameters, was given " + std::to_string(parameters.size()));
  parameters_ = parameters;
  gradients_ = gradients;
}

}  // namespace cclab::train
