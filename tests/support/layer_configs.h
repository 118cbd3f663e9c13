// One LayerConfig of each kind, whole (unsliced), for the trainers' layer tests.
#pragma once

#include "model/layer.h"

namespace cclab::train {

inline LayerConfig convolution(ActivationShape input, size_t kernel, size_t outputs, size_t stride, size_t padding) {
  LayerConfig c;
  c.kind = LayerKind::convolution;
  c.input = input;
  c.kernel = kernel;
  c.stride = stride;
  c.padding = padding;
  c.outputs = Slice::whole(outputs);
  c.inputs = Slice::whole(input.channels);
  return c;
}
inline LayerConfig max_pool(ActivationShape input, size_t kernel, size_t stride, size_t padding = 0) {
  LayerConfig c;
  c.kind = LayerKind::max_pool;
  c.input = input;
  c.kernel = kernel;
  c.stride = stride;
  c.padding = padding;
  return c;
}
inline LayerConfig relu(ActivationShape input) {
  LayerConfig c;
  c.kind = LayerKind::relu;
  c.input = input;
  return c;
}
inline LayerConfig fully_connected(ActivationShape input, size_t outputs) {
  LayerConfig c;
  c.kind = LayerKind::fully_connected;
  c.input = input;
  c.outputs = Slice::whole(outputs);
  c.inputs = Slice::whole(input.channels);
  return c;
}

}  // namespace cclab::train
