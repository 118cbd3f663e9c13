#include "layer_times.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cclab/error.h"
#include "cclab/whole_file.h"
#include "results.h"

namespace cclab::train {
namespace {

// Far beyond any model's file (a line per layer), short of what a reader should hold.
constexpr size_t kLargestFileBytes = 1 << 20;
constexpr size_t kMostLayers = 4096;
constexpr double kLongestLayerSeconds = 1e4;  // one layer's pass per step
constexpr size_t kLargestCount = size_t(1) << 40;

double finite_in(const nlohmann::json& value, const char* name, double lowest, double highest) {
  if (!value.is_number()) throw UsageError(std::string(name) + " is not a number");
  const double number = value.get<double>();
  if (!std::isfinite(number) || number < lowest || number > highest)
    throw UsageError(std::string(name) + " is out of range");
  return number;
}

size_t count_in(const nlohmann::json& value, const char* name, size_t lowest, size_t highest) {
  if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0))
    throw UsageError(std::string(name) + " is not a count");
  const uint64_t number = value.get<uint64_t>();
  if (number < lowest || number > highest) throw UsageError(std::string(name) + " is out of range");
  return size_t(number);
}

std::string text_of(const nlohmann::json& value, const char* name) {
  if (!value.is_string()) throw UsageError(std::string(name) + " is not a string");
  const std::string text = value.get<std::string>();
  if (text.size() > 4096) throw UsageError(std::string(name) + " is too long");
  return text;
}

const nlohmann::json& field(const nlohmann::json& object, const char* name) {
  const auto found = object.find(name);
  if (found == object.end()) throw UsageError(std::string("no \"") + name + "\"");
  return *found;
}

}  // namespace

double LayerTimes::forward_s() const {
  double sum = 0;
  for (const LayerTime& layer : layers) sum += layer.forward_s;
  return sum;
}

double LayerTimes::backward_s() const {
  double sum = 0;
  for (const LayerTime& layer : layers) sum += layer.backward_s;
  return sum;
}

LayerTimes layer_times_of(const Model& model, const LayerProfile& profile, size_t steps, const std::string& model_name,
                          size_t batch, int threads, double update_s, double data_s) {
  if (steps == 0) throw Error("no timed steps to profile the layers with");
  LayerTimes times;
  times.model = model_name;
  times.batch = batch;
  times.threads = threads;
  times.steps = steps;
  times.update_s = update_s;
  times.data_s = data_s;
  const nlohmann::json env = environment_description();
  times.host = env.value("host", "");
  times.cpu = env.value("cpu", "");
  for (size_t i = 0; i < model.size(); ++i) {
    const Layer& layer = model.layer(i);
    times.layers.push_back({layer.config().name(), profile.forward_s.at(i) / double(steps),
                            profile.backward_s.at(i) / double(steps), layer.parameter_count(),
                            layer.output_shape().elements()});
  }
  return times;
}

std::string layer_times_to_json(const LayerTimes& times) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerTime& layer : times.layers)
    layers.push_back({{"name", layer.name},
                      {"forward_s", layer.forward_s},
                      {"backward_s", layer.backward_s},
                      {"parameters", layer.parameters},
                      {"output_elements", layer.output_elements}});
  const nlohmann::json document{{"schema", kLayerTimesSchema},
                                {"model", times.model},
                                {"batch", times.batch},
                                {"threads", times.threads},
                                {"steps", times.steps},
                                {"update_s", times.update_s},
                                {"data_s", times.data_s},
                                {"host", times.host},
                                {"cpu", times.cpu},
                                {"layers", layers}};
  return document.dump(1) + "\n";
}

void save_layer_times(const std::string& path, const LayerTimes& times) {
  write_whole_file(path, layer_times_to_json(times));
}

LayerTimes layer_times_from_json(const std::string& text) {
  if (text.size() > kLargestFileBytes) throw UsageError("larger than any cclab writes");
  const nlohmann::json document = nlohmann::json::parse(text, nullptr, false);
  if (document.is_discarded() || !document.is_object()) throw UsageError("not a JSON object");
  if (document.value("schema", "") != kLayerTimesSchema)
    throw UsageError(std::string("not a ") + kLayerTimesSchema + " document");
  LayerTimes times;
  times.model = text_of(field(document, "model"), "model");
  times.batch = count_in(field(document, "batch"), "batch", 1, size_t(1) << 24);
  times.threads = int(count_in(field(document, "threads"), "threads", 1, 4096));
  times.steps = count_in(field(document, "steps"), "steps", 1, size_t(1) << 40);
  times.update_s = finite_in(field(document, "update_s"), "update_s", 0, kLongestLayerSeconds);
  times.data_s = finite_in(field(document, "data_s"), "data_s", 0, kLongestLayerSeconds);
  times.host = text_of(field(document, "host"), "host");
  times.cpu = text_of(field(document, "cpu"), "cpu");
  const nlohmann::json& layers = field(document, "layers");
  if (!layers.is_array() || layers.empty() || layers.size() > kMostLayers)
    throw UsageError("layers is not a list of 1 to 4096 layers");
  for (const nlohmann::json& layer : layers) {
    if (!layer.is_object()) throw UsageError("a layer is not an object");
    times.layers.push_back({text_of(field(layer, "name"), "name"),
                            finite_in(field(layer, "forward_s"), "forward_s", 0, kLongestLayerSeconds),
                            finite_in(field(layer, "backward_s"), "backward_s", 0, kLongestLayerSeconds),
                            count_in(field(layer, "parameters"), "parameters", 0, kLargestCount),
                            count_in(field(layer, "output_elements"), "output_elements", 1, kLargestCount)});
  }
  return times;
}

LayerTimes load_layer_times(const std::string& path) {
  const std::string text = read_small_file(path, "layer times", kLargestFileBytes);
  try {
    return layer_times_from_json(text);
  } catch (const std::exception& problem) {
    throw UsageError("layer times '" + path + "' are not valid: " + problem.what());
  }
}

void check_layer_times_match(const LayerTimes& times, const ModelPlan& plan, const std::string& model, size_t batch,
                             int threads, const std::string& path) {
  const auto stale = [&](const std::string& why) {
    return UsageError("layer times '" + path + "' are stale: " + why +
                      " (measure again: cclab train --profile-layers FILE ...)");
  };
  if (times.model != model) throw stale("measured for model " + times.model + ", the plan is for " + model);
  if (times.batch != batch)
    throw stale("measured at batch " + std::to_string(times.batch) + ", the plan is for " + std::to_string(batch));
  if (times.threads != threads)
    throw stale("measured with " + std::to_string(times.threads) + " thread(s), the plan is for " +
                std::to_string(threads));
  if (times.layers.size() != plan.layers.size())
    throw stale(std::to_string(times.layers.size()) + " layers, the model has " + std::to_string(plan.layers.size()));
  for (size_t i = 0; i < plan.layers.size(); ++i)
    if (times.layers[i].name != plan.layers[i].name() ||
        times.layers[i].parameters != plan.layers[i].parameter_count() ||
        times.layers[i].output_elements != plan.layers[i].output().elements())
      throw stale("layer " + std::to_string(i) + " is " + times.layers[i].name + ", the model's is " +
                  plan.layers[i].name());
}

std::vector<double> measure_layer_seconds(const std::vector<LayerConfig>& layers, Backend& backend, uint64_t seed,
                                          size_t batch) {
  constexpr int kRepetitions = 5;
  Model model(layers, backend, seed);
  Activations activations(model, batch);
  // Any finite values do: the time of these layers does not depend on them.
  const auto fill = [](float* data, size_t count) {
    for (size_t i = 0; i < count; ++i) data[i] = float(i % 17) / 17.0f - 0.5f;
  };
  fill(activations.input(), batch * model.input_shape().elements());
  fill(activations.output_gradient(), batch * model.output_shape().elements());
  BackwardOptions backward;
  backward.input_gradient = layers.front().index > 0;
  const auto pass = [&] {
    model.forward(activations, batch, true);
    model.backward(activations, batch, backward);
  };
  pass();
  std::vector<double> seconds(model.size(), std::numeric_limits<double>::infinity());
  LayerProfile profile;
  for (int repetition = 0; repetition < kRepetitions; ++repetition) {
    model.set_profile(&profile);  // from zero
    pass();
    for (size_t i = 0; i < model.size(); ++i)
      seconds[i] = std::min(seconds[i], profile.forward_s[i] + profile.backward_s[i]);
  }
  model.set_profile(nullptr);
  return seconds;
}

}  // namespace cclab::train
