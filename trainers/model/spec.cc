#include "model/spec.h"

#include <charconv>
#include <optional>

#include "cclab/error.h"

namespace cclab::train {
namespace {

constexpr const char* kGrammar =
    "items are convKxK:C[:sS][:pP|:same|:valid], poolK[:sS][:pP], relu, fc:N, separated by commas";

struct BuiltinModel {
  const char* name;
  const char* spec;
};
constexpr BuiltinModel kBuiltinModels[] = {
    {"lenet5", "conv5x5:6:p2,relu,pool2,conv5x5:16:valid,relu,pool2,fc:120,relu,fc:84,relu,fc:10"},
    {"convnet", "conv5x5:32,relu,pool2,conv5x5:64,relu,pool2,fc:1024,relu,fc:10"},
};

// Largest value a count in a spec may have; anything larger is certainly a typo.
constexpr size_t kMaxCount = size_t{1} << 24;

std::string trim(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t at = 0;
  while (true) {
    const size_t end = text.find(separator, at);
    parts.push_back(text.substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (end == std::string::npos) return parts;
    at = end + 1;
  }
}

// A whole string of decimal digits, 1..kMaxCount (0 allowed when `allow_zero`).
std::optional<size_t> parse_count(const std::string& text, bool allow_zero = false) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if ((value == 0 && !allow_zero) || value > kMaxCount) return std::nullopt;
  return value;
}

class ItemError {
 public:
  ItemError(size_t position, const std::string& item) : position_(position), item_(item) {}
  [[noreturn]] void fail(const std::string& why) const {
    throw UsageError("bad model spec item " + std::to_string(position_) + " '" + item_ + "': " + why);
  }

 private:
  size_t position_;
  std::string item_;
};

// Applies ":sS" / ":pP" / ":same" / ":valid" options to a convolution or pool.
void parse_window_options(const std::vector<std::string>& options, LayerConfig& layer, const ItemError& error,
                          bool convolution) {
  bool padding_given = false, stride_given = false;
  for (const std::string& option : options) {
    if (convolution && (option == "same" || option == "valid")) {
      if (padding_given) error.fail("padding given twice");
      padding_given = true;
      if (option == "same" && layer.kernel % 2 == 0)
        error.fail("'same' padding needs an odd kernel; give :pP instead");
      layer.padding = option == "same" ? (layer.kernel - 1) / 2 : 0;
    } else if (!option.empty() && option[0] == 'p') {
      const auto padding = parse_count(option.substr(1), true);
      if (!padding) error.fail("bad padding '" + option + "' (expected pP, e.g. p2)");
      if (padding_given) error.fail("padding given twice");
      if (*padding >= layer.kernel)
        error.fail("padding " + std::to_string(*padding) + " is not smaller than the kernel");
      padding_given = true;
      layer.padding = *padding;
    } else if (!option.empty() && option[0] == 's') {
      const auto stride = parse_count(option.substr(1));
      if (!stride) error.fail("bad stride '" + option + "' (expected sS with S >= 1, e.g. s2)");
      if (stride_given) error.fail("stride given twice");
      stride_given = true;
      layer.stride = *stride;
    } else {
      error.fail("unknown option '" + option + "' (" + kGrammar + ")");
    }
  }
}

// Reads "K" or "KxK" after the layer keyword.
size_t parse_kernel(const std::string& text, const ItemError& error, bool require_square_form) {
  const auto cross = text.find('x');
  if (cross == std::string::npos) {
    if (require_square_form) error.fail("expected convKxK:C, e.g. conv5x5:32");
    const auto kernel = parse_count(text);
    if (!kernel) error.fail("bad window '" + text + "' (expected poolK, e.g. pool2)");
    return *kernel;
  }
  const auto height = parse_count(text.substr(0, cross));
  const auto width = parse_count(text.substr(cross + 1));
  if (!height || !width) error.fail("bad kernel '" + text + "' (expected KxK, e.g. 5x5)");
  if (*height != *width) error.fail("only square kernels are supported (got " + text + ")");
  return *height;
}

LayerConfig parse_item(const std::string& item, const ItemError& error) {
  LayerConfig layer;
  const std::vector<std::string> fields = split(item, ':');
  const std::string& head = fields[0];
  const std::vector<std::string> options(fields.begin() + 1, fields.end());
  if (head == "relu") {
    if (!options.empty()) error.fail("relu takes no options");
    layer.kind = LayerKind::relu;
  } else if (head == "fc") {
    if (options.size() != 1) error.fail("expected fc:N, e.g. fc:10");
    const auto outputs = parse_count(options[0]);
    if (!outputs) error.fail("bad output count '" + options[0] + "' (expected fc:N with N >= 1)");
    layer.kind = LayerKind::fully_connected;
    layer.outputs = Slice::whole(*outputs);
  } else if (head.rfind("conv", 0) == 0) {
    layer.kind = LayerKind::convolution;
    layer.kernel = parse_kernel(head.substr(4), error, true);
    if (options.empty()) error.fail("missing output channels (expected convKxK:C, e.g. conv5x5:32)");
    const auto channels = parse_count(options[0]);
    if (!channels) error.fail("bad output channels '" + options[0] + "' (expected convKxK:C with C >= 1)");
    layer.outputs = Slice::whole(*channels);
    if (layer.kernel % 2 == 0) layer.padding = 0;  // no 'same' default for even kernels
    else layer.padding = (layer.kernel - 1) / 2;
    parse_window_options({options.begin() + 1, options.end()}, layer, error, true);
  } else if (head.rfind("maxpool", 0) == 0 || head.rfind("pool", 0) == 0) {
    layer.kind = LayerKind::max_pool;
    layer.kernel = parse_kernel(head.substr(head[0] == 'm' ? 7 : 4), error, false);
    layer.stride = layer.kernel;
    parse_window_options(options, layer, error, false);
  } else {
    error.fail(std::string("unknown layer (") + kGrammar + ")");
  }
  return layer;
}

}  // namespace

size_t ModelPlan::parameter_count() const {
  size_t count = 0;
  for (const LayerConfig& layer : layers) count += layer.parameter_count();
  return count;
}

std::string builtin_model_spec(const std::string& name) {
  for (const BuiltinModel& model : kBuiltinModels)
    if (name == model.name) return model.spec;
  return "";
}

std::vector<std::string> builtin_model_names() {
  std::vector<std::string> names;
  for (const BuiltinModel& model : kBuiltinModels) names.emplace_back(model.name);
  return names;
}

std::vector<LayerConfig> parse_model_spec(const std::string& spec, ActivationShape input) {
  if (trim(spec).empty()) throw UsageError("empty model spec (" + std::string(kGrammar) + ")");
  if (input.elements() == 0) throw UsageError("model input shape " + input.to_string() + " is empty");
  std::vector<LayerConfig> layers;
  ActivationShape shape = input;
  bool seen_fc = false;
  const std::vector<std::string> items = split(spec, ',');
  for (size_t position = 0; position < items.size(); ++position) {
    const std::string item = trim(items[position]);
    const ItemError error(position + 1, item);
    if (item.empty()) error.fail("empty item (two commas in a row, or a trailing comma?)");
    LayerConfig layer = parse_item(item, error);
    layer.index = position;
    layer.input = shape;
    switch (layer.kind) {
      case LayerKind::convolution:
      case LayerKind::max_pool:
        if (seen_fc)
          error.fail("a " + std::string(layer.kind == LayerKind::convolution ? "convolution" : "pool") +
                     " needs a spatial input but follows an fc layer; put fc layers last");
        if (shape.height + 2 * layer.padding < layer.kernel || shape.width + 2 * layer.padding < layer.kernel)
          error.fail("its " + std::to_string(layer.kernel) + "x" + std::to_string(layer.kernel) +
                     " window does not fit its " + shape.to_string() + " input (padding " +
                     std::to_string(layer.padding) + ")");
        break;
      case LayerKind::fully_connected:
        seen_fc = true;
        break;
      case LayerKind::relu:
        break;
    }
    if (layer.kind == LayerKind::convolution || layer.kind == LayerKind::fully_connected)
      layer.inputs = Slice::whole(shape.channels);
    shape = layer.output();
    layers.push_back(layer);
  }
  if (layers.back().kind != LayerKind::fully_connected)
    throw UsageError("bad model spec: the last layer must be fc:N (the class scores), not '" + layers.back().name() +
                     "'");
  return layers;
}

ModelPlan plan_model(const std::string& model_or_spec, ActivationShape input) {
  ModelPlan plan;
  plan.input = input;
  const std::string builtin = builtin_model_spec(model_or_spec);
  if (!builtin.empty()) {
    plan.name = model_or_spec;
    plan.spec = builtin;
  } else {
    plan.name = "custom";
    plan.spec = trim(model_or_spec);
    // A single word that is no layer is more likely a mistyped model name than a one-layer spec.
    const bool looks_like_name = !plan.spec.empty() && plan.spec.find_first_of(",:") == std::string::npos &&
                                 plan.spec != "relu" && plan.spec != "fc" && plan.spec.rfind("conv", 0) != 0 &&
                                 plan.spec.rfind("pool", 0) != 0 && plan.spec.rfind("maxpool", 0) != 0;
    if (looks_like_name) {
      std::string names;
      for (const std::string& name : builtin_model_names()) names += name + ", ";
      throw UsageError("unknown model '" + model_or_spec + "': use " + names +
                       "or a layer list such as conv5x5:32,relu,pool2,fc:10 (" + kGrammar + ")");
    }
  }
  plan.layers = parse_model_spec(plan.spec, input);
  return plan;
}

}  // namespace cclab::train
