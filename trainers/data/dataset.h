// Data sets: Fashion-MNIST from IDX files and synthetic data of any shape, behind one interface that
// hands out samples by index (so a loader can shuffle and shard without copying the data set).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/layer.h"

namespace cclab::train {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  virtual ActivationShape sample_shape() const = 0;
  virtual size_t classes() const = 0;
  /// "fashion-mnist train (60000)"
  virtual std::string description() const = 0;
  /// Writes samples `indices`, as normalised NHWC floats, to `images` and their labels to `labels`.
  virtual void gather(std::span<const size_t> indices, float* images, int32_t* labels) const = 0;
};

/// 8-bit images with labels held in memory, normalised on the way out: (pixel / 255 - mean) / std.
class ByteImageDataset final : public Dataset {
 public:
  ByteImageDataset(std::string description, ActivationShape shape, size_t classes, std::vector<uint8_t> pixels,
                   std::vector<int32_t> labels, float mean, float std_dev);
  size_t size() const override { return labels_.size(); }
  ActivationShape sample_shape() const override { return shape_; }
  size_t classes() const override { return classes_; }
  std::string description() const override { return description_; }
  void gather(std::span<const size_t> indices, float* images, int32_t* labels) const override;

 private:
  std::string description_;
  ActivationShape shape_;
  size_t classes_;
  std::vector<uint8_t> pixels_;
  std::vector<int32_t> labels_;
  float lookup_[256];  // normalised value of each byte
};

/// Fashion-MNIST training-set statistics of pixel / 255 (all 60000 x 784 pixels): every split is
/// normalised with these, so inputs have mean 0 and standard deviation 1 over the training set.
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;
inline constexpr const char* kFashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

enum class Split { train, test };

/// Loads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz from `directory`, whose images must have
/// `shape` (the model's input). Missing or corrupt files, images of another shape and inconsistent
/// pairs (counts, labels outside 0..9) throw UsageError naming the file.
std::unique_ptr<Dataset> load_fashion_mnist(const std::string& directory, Split split,
                                            ActivationShape shape = {1, 28, 28});

/// Learnable synthetic data, every sample a pure function of (seed, split, index): each class has a
/// fixed random pattern in [-1, 1]; a sample is 0.5 x its class pattern + uniform noise in [-1, 1];
/// labels are uniform over the classes. Nothing is stored, so any shape and size costs no memory.
class SyntheticDataset final : public Dataset {
 public:
  SyntheticDataset(ActivationShape shape, size_t classes, size_t size, uint64_t seed, Split split);
  size_t size() const override { return size_; }
  ActivationShape sample_shape() const override { return shape_; }
  size_t classes() const override { return classes_; }
  std::string description() const override;
  void gather(std::span<const size_t> indices, float* images, int32_t* labels) const override;
  /// The label of sample `index` (without generating its image).
  int32_t label(size_t index) const;

 private:
  ActivationShape shape_;
  size_t classes_, size_;
  uint64_t seed_;
  Split split_;
};

/// What `--data` names: "fashion-mnist" or "synthetic:CxHxW[:N]" (N training samples, default
/// 60000; the test split has max(1, N / 6), as Fashion-MNIST's 60000 / 10000).
struct DataSource {
  enum class Kind { fashion_mnist, synthetic } kind = Kind::fashion_mnist;
  ActivationShape shape{1, 28, 28};
  size_t train_size = 60000, test_size = 10000;
  std::string directory = kFashionMnistDirectory;
  /// As given on the command line.
  std::string text;
};

/// Parses `--data`; throws UsageError with the accepted forms on anything else.
DataSource parse_data_source(const std::string& text, const std::string& fashion_mnist_directory);

struct DataSplits {
  std::unique_ptr<Dataset> train, test;
};

/// Opens both splits. `classes` is used by synthetic data (Fashion-MNIST has 10).
DataSplits open_data(const DataSource& source, size_t classes, uint64_t seed);

}  // namespace cclab::train
