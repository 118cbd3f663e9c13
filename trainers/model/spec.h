// Model specifications: the built-in models and the layer-list grammar of `cclab train --model`.
//
// Grammar (items separated by commas, whitespace around items ignored):
//   convKxK:C[:sS][:pP|:same|:valid]   convolution, K x K kernel, C output channels, stride S
//                                      (default 1), zero padding P (default "same" = (K-1)/2)
//   poolK[:sS][:pP]                     max pooling, K x K window, stride S (default K), padding P (0)
//   relu                                rectified linear unit
//   fc:N                                fully connected layer with N outputs (flattens its input)
// Convolutions and pools need a spatial input, so they come before the first fc; the last layer is
// an fc whose outputs are the class scores (softmax cross-entropy is the loss).
//
// Built-in models, on a 1x28x28 input:
//   lenet5  = conv5x5:6:p2,relu,pool2,conv5x5:16:valid,relu,pool2,fc:120,relu,fc:84,relu,fc:10
//             (padding 2 on the first convolution, as the classic (Fashion-)MNIST LeNet-5, so the
//             second convolution sees 14x14 and fc:120 sees 16x5x5 = 400 features; 61,706 parameters)
//   convnet = conv5x5:32,relu,pool2,conv5x5:64,relu,pool2,fc:1024,relu,fc:10
//             ('same' convolutions; 3,274,634 parameters)
#pragma once

#include <string>
#include <vector>

#include "model/layer.h"

namespace cclab::train {

/// A whole model: its name ("lenet5", or "custom" for a spec), its spec string, and its layers with
/// shapes worked out for the input.
struct ModelPlan {
  std::string name;
  std::string spec;
  ActivationShape input;
  std::vector<LayerConfig> layers;

  size_t parameter_count() const;
  ActivationShape output() const { return layers.empty() ? input : layers.back().output(); }
};

/// Spec string of a built-in model, or empty if `name` is not one.
std::string builtin_model_spec(const std::string& name);
/// Names of the built-in models.
std::vector<std::string> builtin_model_names();

/// Parses a layer list and works out every layer's shapes for `input`. Throws UsageError naming the
/// offending item (its position and text) for a malformed item, and for shapes that do not work out
/// (a window larger than its input, a convolution after an fc, a last layer that is not an fc).
std::vector<LayerConfig> parse_model_spec(const std::string& spec, ActivationShape input);

/// A built-in model name or a layer list, planned for `input`.
ModelPlan plan_model(const std::string& model_or_spec, ActivationShape input);

}  // namespace cclab::train
