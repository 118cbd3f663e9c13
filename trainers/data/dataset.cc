#include "data/dataset.h"

#include <charconv>
#include <cstring>
#include <optional>

#include "cclab/error.h"
#include "data/idx.h"
#include "model/random.h"

namespace cclab::train {

ByteImageDataset::ByteImageDataset(std::string description, ActivationShape shape, size_t classes,
                                   std::vector<uint8_t> pixels, std::vector<int32_t> labels, float mean,
                                   float std_dev)
    : description_(std::move(description)),
      shape_(shape),
      classes_(classes),
      pixels_(std::move(pixels)),
      labels_(std::move(labels)) {
  for (int value = 0; value < 256; ++value) lookup_[value] = (float(value) / 255.0f - mean) / std_dev;
}

void ByteImageDataset::gather(std::span<const size_t> indices, float* images, int32_t* labels) const {
  const size_t elements = shape_.elements();
  for (size_t k = 0; k < indices.size(); ++k) {
    const uint8_t* pixels = pixels_.data() + indices[k] * elements;
    float* image = images + k * elements;
    for (size_t e = 0; e < elements; ++e) image[e] = lookup_[pixels[e]];
    labels[k] = labels_[indices[k]];
  }
}

std::unique_ptr<Dataset> load_fashion_mnist(const std::string& directory, Split split, ActivationShape shape) {
  const std::string prefix = directory + "/" + (split == Split::train ? "train" : "t10k");
  const std::string images_path = prefix + "-images-idx3-ubyte.gz", labels_path = prefix + "-labels-idx1-ubyte.gz";
  if (shape.channels != 1)
    throw UsageError("Fashion-MNIST images have 1 channel, not " + std::to_string(shape.channels));
  // The images must have the model's input shape: read_idx checks it from the header, before the data.
  IdxArray images = read_idx(images_path, {shape.height, shape.width});
  const IdxArray labels = read_idx(labels_path);
  if (labels.dims.size() != 1)
    throw UsageError("data file '" + labels_path + "' holds " + std::to_string(labels.dims.size()) +
                     "-dimensional data; labels need 1");
  if (images.dims[0] != labels.dims[0])
    throw UsageError("data file '" + images_path + "' has " + std::to_string(images.dims[0]) + " images but '" +
                     labels_path + "' has " + std::to_string(labels.dims[0]) + " labels");
  constexpr size_t kClasses = 10;
  std::vector<int32_t> label_values(labels.values.begin(), labels.values.end());
  for (size_t i = 0; i < label_values.size(); ++i)
    if (label_values[i] >= int32_t(kClasses))
      throw UsageError("data file '" + labels_path + "' has label " + std::to_string(label_values[i]) + " at index " +
                       std::to_string(i) + " (0..9 expected)");
  const std::string description = std::string("fashion-mnist ") + (split == Split::train ? "train" : "test") + " (" +
                                  std::to_string(label_values.size()) + ")";
  return std::make_unique<ByteImageDataset>(description, shape, kClasses, std::move(images.values),
                                            std::move(label_values), kFashionMnistMean, kFashionMnistStd);
}

namespace {
// Random streams of synthetic data (independent of those of initialisation, 2 x layer index + 0/1,
// which stay far below these).
constexpr uint64_t kPatternStream = 0x5359'4E54'0000'0001ull;
constexpr uint64_t kLabelStream = 0x5359'4E54'0000'0002ull;
constexpr uint64_t kNoiseStream = 0x5359'4E54'0000'0003ull;
uint64_t split_offset(Split split) { return split == Split::train ? 0 : uint64_t{1} << 40; }
}  // namespace

SyntheticDataset::SyntheticDataset(ActivationShape shape, size_t classes, size_t size, uint64_t seed, Split split)
    : shape_(shape), classes_(classes), size_(size), seed_(seed), split_(split) {
  if (classes < 2) throw UsageError("synthetic data needs a model with at least 2 outputs (classes)");
}

std::string SyntheticDataset::description() const {
  return "synthetic " + shape_.to_string() + " " + (split_ == Split::train ? "train" : "test") + " (" +
         std::to_string(size_) + ")";
}

int32_t SyntheticDataset::label(size_t index) const {
  return static_cast<int32_t>(uniform_below(random_bits(seed_, kLabelStream, split_offset(split_) + index), classes_));
}

void SyntheticDataset::gather(std::span<const size_t> indices, float* images, int32_t* labels) const {
  const size_t elements = shape_.elements();
  for (size_t k = 0; k < indices.size(); ++k) {
    const size_t index = indices[k];
    const int32_t label_value = label(index);
    labels[k] = label_value;
    float* image = images + k * elements;
    const uint64_t sample = split_offset(split_) + index;
    for (size_t e = 0; e < elements; ++e) {
      const float pattern = 2.0f * uniform01(random_bits(seed_, kPatternStream, label_value * elements + e)) - 1.0f;
      const float noise = 2.0f * uniform01(random_bits(seed_, kNoiseStream ^ (sample << 20), e)) - 1.0f;
      image[e] = 0.5f * pattern + noise;
    }
  }
}

namespace {

std::optional<size_t> parse_positive(const std::string& text) {
  size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value == 0) return std::nullopt;
  return value;
}

}  // namespace

DataSource parse_data_source(const std::string& text, const std::string& fashion_mnist_directory) {
  DataSource source;
  source.text = text;
  source.directory = fashion_mnist_directory;
  if (text == "fashion-mnist") return source;
  const std::string usage = "--data takes fashion-mnist or synthetic:CxHxW[:N] (e.g. synthetic:3x32x32:10000), not '" +
                            text + "'";
  if (text.rfind("synthetic:", 0) != 0) throw UsageError(usage);
  source.kind = DataSource::Kind::synthetic;
  std::string rest = text.substr(10);
  if (const auto colon = rest.find(':'); colon != std::string::npos) {
    const auto count = parse_positive(rest.substr(colon + 1));
    if (!count || *count > (size_t{1} << 32)) throw UsageError(usage + ": bad sample count");
    source.train_size = *count;
    rest.resize(colon);
  }
  source.test_size = std::max<size_t>(1, source.train_size / 6);
  const auto first = rest.find('x'), second = first == std::string::npos ? first : rest.find('x', first + 1);
  if (second == std::string::npos) throw UsageError(usage + ": the shape needs three sizes CxHxW");
  const auto channels = parse_positive(rest.substr(0, first));
  const auto height = parse_positive(rest.substr(first + 1, second - first - 1));
  const auto width = parse_positive(rest.substr(second + 1));
  if (!channels || !height || !width) throw UsageError(usage + ": sizes must be positive integers");
  if (*channels * *height * *width > (size_t{1} << 28)) throw UsageError(usage + ": samples that large do not fit");
  source.shape = {*channels, *height, *width};
  return source;
}

DataSplits open_data(const DataSource& source, size_t classes, uint64_t seed) {
  DataSplits splits;
  if (source.kind == DataSource::Kind::fashion_mnist) {
    splits.train = load_fashion_mnist(source.directory, Split::train, source.shape);
    splits.test = load_fashion_mnist(source.directory, Split::test, source.shape);
  } else {
    splits.train = std::make_unique<SyntheticDataset>(source.shape, classes, source.train_size, seed, Split::train);
    splits.test = std::make_unique<SyntheticDataset>(source.shape, classes, source.test_size, seed, Split::test);
  }
  return splits;
}

}  // namespace cclab::train
