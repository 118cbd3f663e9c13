#include "model/model.h"

#include <chrono>

#include "cclab/error.h"
#include "cclab/trace.h"

namespace cclab::train {

Model::Model(std::vector<LayerConfig> configs, Backend& backend, uint64_t seed) : backend_name_(backend.name()) {
  if (configs.empty()) throw UsageError("a model needs at least one layer");
  for (size_t i = 1; i < configs.size(); ++i) {
    const ActivationShape produced = configs[i - 1].output(), expected = configs[i].input;
    const bool fits = configs[i].kind == LayerKind::fully_connected ? produced.elements() == expected.elements()
                                                                     : produced == expected;
    if (!fits)
      throw UsageError("layer " + std::to_string(configs[i].index) + " (" + configs[i].name() + ") expects a " +
                       expected.to_string() + " input but layer " + std::to_string(configs[i - 1].index) + " (" +
                       configs[i - 1].name() + ") produces " + produced.to_string());
  }
  std::vector<size_t> counts;
  for (const LayerConfig& config : configs) counts.push_back(config.parameter_count());
  parameters_ = ParameterStore(counts);
  for (const LayerConfig& config : configs) layers_.push_back(backend.make_layer(config));
  bind_layers();
  for (size_t i = 0; i < configs.size(); ++i)
    initialize_layer(configs[i], seed, layers_[i]->weights(), layers_[i]->bias());
}

void Model::bind_layers() {
  for (size_t i = 0; i < layers_.size(); ++i) {
    const ParameterRange& range = parameters_.range(i);
    layers_[i]->bind(parameters_.values().subspan(range.offset, range.count),
                     parameters_.gradients().subspan(range.offset, range.count));
  }
}

void Model::place_parameters(std::span<float> values, std::span<float> gradients) {
  parameters_.place(values, gradients);
  bind_layers();
}

void Model::set_profile(LayerProfile* profile) {
  profile_ = profile;
  if (profile_) {
    profile_->forward_s.assign(layers_.size(), 0.0);
    profile_->backward_s.assign(layers_.size(), 0.0);
    profile_->calls.assign(layers_.size(), 0);
  }
}

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }
}  // namespace

// Which layers a traced forward or backward ran, and on how many samples.
static void trace_layers(TraceSpan& span, size_t first, size_t last, size_t batch) {
  span.arg("layers", std::to_string(first) + ".." + std::to_string(last - 1));
  span.arg("samples", double(batch));
}

void Model::forward(Activations& activations, size_t batch, bool training, size_t first, size_t last) {
  last = std::min(last, layers_.size());
  if (batch > activations.max_batch())
    throw Error("batch of " + std::to_string(batch) + " exceeds the activations' capacity " +
                std::to_string(activations.max_batch()));
  TraceSpan span("compute", "forward");
  if (span) trace_layers(span, first, last, batch);
  for (size_t i = first; i < last; ++i) {
    const auto start = profile_ ? Clock::now() : Clock::time_point{};
    layers_[i]->forward({activations.activation(i), activations.activation(i + 1), activations.workspace(i), batch,
                         training});
    if (profile_) {
      profile_->forward_s[i] += seconds_since(start);
      ++profile_->calls[i];
    }
  }
}

void Model::backward(Activations& activations, size_t batch, const BackwardOptions& options, size_t first,
                     size_t last) {
  last = std::min(last, layers_.size());
  TraceSpan span("compute", "backward");
  if (span) trace_layers(span, first, last, batch);
  for (size_t i = last; i-- > first;) {
    const auto start = profile_ ? Clock::now() : Clock::time_point{};
    const bool needs_input_grad = i > first || options.input_gradient;
    layers_[i]->backward({activations.activation(i), activations.activation(i + 1), activations.gradient(i + 1),
                          needs_input_grad ? activations.gradient(i) : nullptr, activations.workspace(i), batch,
                          options.accumulate});
    if (profile_) profile_->backward_s[i] += seconds_since(start);
    if (options.on_gradients_ready && parameters_.range(i).count > 0) options.on_gradients_ready(parameters_.range(i));
  }
}

Activations::Activations(const Model& model, size_t max_batch) : Activations(model, max_batch, 0, model.size()) {}

Activations::Activations(const Model& model, size_t max_batch, size_t first, size_t last) : max_batch_(max_batch) {
  last = std::min(last, model.size());
  const auto held = [&](size_t boundary) { return boundary >= first && boundary <= last ? max_batch : 0; };
  activations_.emplace_back(held(0) * model.input_shape().elements());
  gradients_.emplace_back(held(0) * model.input_shape().elements());
  for (size_t i = 0; i < model.size(); ++i) {
    const size_t elements = held(i + 1) * model.layer(i).output_shape().elements();
    activations_.emplace_back(elements);
    gradients_.emplace_back(elements);
    workspaces_.emplace_back(i >= first && i < last ? model.layer(i).workspace_bytes(max_batch) : 0);
  }
}

}  // namespace cclab::train
