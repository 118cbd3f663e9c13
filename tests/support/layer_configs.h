// One LayerConfig of each kind, whole (unsliced), for the trainers' layer tests.
#pragma once

#include "model/layer.h"

namespace cclab::train {

inline LayerConfig layer_of(LayerKind kind, ActivationShape input) {
  LayerConfig c;
  c.kind = kind;
  c.input = input;
  return c;
}
// A window sliding over the input: a convolution's or a pooling's.
inline LayerConfig windowed(LayerKind kind, ActivationShape input, size_t kernel, size_t stride, size_t padding) {
  LayerConfig c = layer_of(kind, input);
  c.kernel = kernel;
  c.stride = stride;
  c.padding = padding;
  return c;
}
// Every output from every input channel: the layers with parameters, unsliced.
inline LayerConfig unsliced(LayerConfig c, size_t outputs) {
  c.outputs = Slice::whole(outputs);
  c.inputs = Slice::whole(c.input.channels);
  return c;
}

inline LayerConfig convolution(ActivationShape input, size_t kernel, size_t outputs, size_t stride, size_t padding) {
  return unsliced(windowed(LayerKind::convolution, input, kernel, stride, padding), outputs);
}
inline LayerConfig max_pool(ActivationShape input, size_t kernel, size_t stride, size_t padding = 0) {
  return windowed(LayerKind::max_pool, input, kernel, stride, padding);
}
inline LayerConfig relu(ActivationShape input) { return layer_of(LayerKind::relu, input); }
inline LayerConfig fully_connected(ActivationShape input, size_t outputs) {
  return unsliced(layer_of(LayerKind::fully_connected, input), outputs);
}

}  // namespace cclab::train
