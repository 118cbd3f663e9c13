// Data for the trainers: the IDX reader (gzip and plain, every corruption a UsageError naming the
// file), Fashion-MNIST loading and normalisation, synthetic data, the shuffling/sharding loader.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "cclab/error.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/loader.h"

namespace cclab::train {
namespace {

class DataFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cclab_data_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::vector<uint8_t> idx_bytes(uint8_t type, const std::vector<uint32_t>& dims,
                                        const std::vector<uint8_t>& values) {
    std::vector<uint8_t> bytes{0, 0, type, uint8_t(dims.size())};
    for (uint32_t dim : dims)
      for (int shift : {24, 16, 8, 0}) bytes.push_back(uint8_t(dim >> shift));
    bytes.insert(bytes.end(), values.begin(), values.end());
    return bytes;
  }
  std::string write_gz(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string path = (dir_ / name).string();
    gzFile file = gzopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr);
    EXPECT_EQ(gzwrite(file, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
    gzclose(file);
    return path;
  }
  std::string write_plain(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return path;
  }
  static std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream stream(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
  }
  // Expects read_idx(path) to throw a UsageError naming the file and containing `fragment`.
  static void expect_error(const std::string& path, const std::string& fragment) {
    try {
      read_idx(path);
      ADD_FAILURE() << path << " was accepted";
    } catch (const UsageError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("'" + path + "'"), std::string::npos) << message;
      EXPECT_NE(message.find(fragment), std::string::npos) << message << " (expected '" << fragment << "')";
    }
  }
  std::filesystem::path dir_;
};

std::vector<uint8_t> counting(size_t count) {
  std::vector<uint8_t> values(count);
  for (size_t i = 0; i < count; ++i) values[i] = uint8_t(i * 7);
  return values;
}

TEST_F(DataFiles, ReadsGzipAndPlainIdx) {
  const auto values = counting(3 * 4 * 5);
  for (const std::string& path : {write_gz("a.gz", idx_bytes(8, {3, 4, 5}, values)),
                                  write_plain("a.idx", idx_bytes(8, {3, 4, 5}, values))}) {
    const IdxArray array = read_idx(path);
    EXPECT_EQ(array.dims, (std::vector<size_t>{3, 4, 5}));
    EXPECT_EQ(array.values, values);
  }
}

TEST_F(DataFiles, CorruptOrMissingFilesAreUsageErrorsNamingTheFile) {
  expect_error((dir_ / "missing.gz").string(), "does not exist");
  expect_error(dir_.string(), "is a directory");
  expect_error(write_gz("magic.gz", {1, 2, 8, 1, 0, 0, 0, 1, 5}), "is not an IDX file");
  expect_error(write_gz("type.gz", idx_bytes(0x0D, {2}, std::vector<uint8_t>(8))), "IDX type 0x0d");
  expect_error(write_gz("dims.gz", {0, 0, 8, 7}), "announces 7 dimensions");
  expect_error(write_gz("zero.gz", idx_bytes(8, {3, 0}, {})), "dimension of size 0");
  expect_error(write_gz("huge.gz", idx_bytes(8, {65536, 65536, 2}, {})), "more than 2^32 elements");
  expect_error(write_gz("short.gz", idx_bytes(8, {10, 10}, counting(99))), "ends after 99 of the 100 bytes of data");
  expect_error(write_gz("header.gz", {0, 0, 8, 2, 0, 0}), "bytes of the header");
  expect_error(write_gz("long.gz", idx_bytes(8, {10}, counting(11))), "has data after the end");
  expect_error(write_gz("empty.gz", {}), "is truncated");
  // A gzip stream with damaged compressed data, and one cut in the middle.
  const std::vector<uint8_t> good = read_file(write_gz("good.gz", idx_bytes(8, {2000}, counting(2000))));
  std::vector<uint8_t> damaged = good;
  for (size_t i = 20; i < damaged.size() - 10; i += 3) damaged[i] ^= 0x5A;
  expect_error(write_plain("damaged.gz", damaged), "");
  std::vector<uint8_t> cut(good.begin(), good.begin() + long(good.size() / 2));
  expect_error(write_plain("cut.gz", cut), "");
}

TEST_F(DataFiles, FashionMnistFilesAreCheckedAsAPair) {
  const auto images = counting(5 * 2 * 3);
  write_gz("train-images-idx3-ubyte.gz", idx_bytes(8, {5, 2, 3}, images));
  write_gz("train-labels-idx1-ubyte.gz", idx_bytes(8, {5}, {0, 9, 3, 3, 1}));
  const ActivationShape shape{1, 2, 3};
  auto train = load_fashion_mnist(dir_.string(), Split::train, shape);
  EXPECT_EQ(train->size(), 5u);
  EXPECT_EQ(train->sample_shape(), (ActivationShape{1, 2, 3}));
  std::vector<float> batch(2 * 6);
  std::vector<int32_t> labels(2);
  const std::vector<size_t> indices{4, 1};
  train->gather(indices, batch.data(), labels.data());
  EXPECT_EQ(labels, (std::vector<int32_t>{1, 9}));
  EXPECT_FLOAT_EQ(batch[0], (images[24] / 255.0f - kFashionMnistMean) / kFashionMnistStd);
  EXPECT_FLOAT_EQ(batch[6 + 5], (images[11] / 255.0f - kFashionMnistMean) / kFashionMnistStd);

  // Missing test split: the message names the file.
  try {
    load_fashion_mnist(dir_.string(), Split::test, shape);
    ADD_FAILURE();
  } catch (const UsageError& error) {
    EXPECT_NE(std::string(error.what()).find("t10k-images-idx3-ubyte.gz' does not exist"), std::string::npos)
        << error.what();
  }
  write_gz("t10k-images-idx3-ubyte.gz", idx_bytes(8, {5, 2, 3}, images));
  write_gz("t10k-labels-idx1-ubyte.gz", idx_bytes(8, {4}, {0, 1, 2, 3}));
  EXPECT_THROW(load_fashion_mnist(dir_.string(), Split::test, shape), UsageError);  // 5 images, 4 labels
  write_gz("t10k-labels-idx1-ubyte.gz", idx_bytes(8, {5}, {0, 1, 2, 10, 3}));
  EXPECT_THROW(load_fashion_mnist(dir_.string(), Split::test, shape), UsageError);  // label 10
}

// A file whose images do not have the model's input shape, or whose header claims far more data
// than it holds, is refused before its data is read into memory of the claimed size.
TEST_F(DataFiles, ImagesOfAnotherShapeOrAHugeClaimAreRefusedEarly) {
  write_gz("train-images-idx3-ubyte.gz", idx_bytes(8, {5, 14, 14}, counting(5 * 14 * 14)));
  write_gz("train-labels-idx1-ubyte.gz", idx_bytes(8, {5}, {0, 1, 2, 3, 4}));
  try {
    load_fashion_mnist(dir_.string(), Split::train);
    ADD_FAILURE();
  } catch (const UsageError& error) {
    EXPECT_NE(std::string(error.what()).find("holds 5x14x14 elements; expected N x 28x28"), std::string::npos)
        << error.what();
  }
  // 65536 x 256 x 256 claimed (4 GiB), none of it there: truncated, and nothing that large allocated.
  const std::string huge = write_gz("huge.gz", {0, 0, 8, 3, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0});
  const auto start = std::chrono::steady_clock::now();
  expect_error(huge, "ends after 0 of the 4294967296 bytes of data");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

// The normalisation constants are the training set's statistics.
TEST(FashionMnist, NormalisationConstantsAreTheTrainingSetStatistics) {
  if (!std::filesystem::exists(std::string(kFashionMnistDirectory) + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const IdxArray images = read_idx(std::string(kFashionMnistDirectory) + "/train-images-idx3-ubyte.gz");
  EXPECT_EQ(images.dims, (std::vector<size_t>{60000, 28, 28}));
  double sum = 0, squares = 0;
  for (uint8_t value : images.values) {
    sum += value / 255.0;
    squares += (value / 255.0) * (value / 255.0);
  }
  const double count = double(images.values.size()), mean = sum / count;
  EXPECT_NEAR(mean, kFashionMnistMean, 5e-4);
  EXPECT_NEAR(std::sqrt(squares / count - mean * mean), kFashionMnistStd, 5e-4);
}

TEST(SyntheticData, IsDeterministicLearnableAndSeeded) {
  SyntheticDataset a({3, 4, 5}, 4, 1000, 7, Split::train), b({3, 4, 5}, 4, 1000, 7, Split::train);
  SyntheticDataset other_seed({3, 4, 5}, 4, 1000, 8, Split::train), test({3, 4, 5}, 4, 1000, 7, Split::test);
  std::vector<size_t> indices(1000);
  std::iota(indices.begin(), indices.end(), size_t{0});
  auto gather = [&](const SyntheticDataset& data) {
    std::pair<std::vector<float>, std::vector<int32_t>> out{std::vector<float>(1000 * 60), std::vector<int32_t>(1000)};
    data.gather(indices, out.first.data(), out.second.data());
    return out;
  };
  const auto first = gather(a), again = gather(b), seeded = gather(other_seed), tested = gather(test);
  EXPECT_EQ(first, again);
  EXPECT_NE(first.first, seeded.first);
  EXPECT_NE(first.first, tested.first);
  std::vector<size_t> per_class(4, 0);
  for (int32_t label : first.second) {
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 4);
    ++per_class[size_t(label)];
  }
  for (size_t count : per_class) EXPECT_GT(count, 200u);
  // Any sample can be produced alone (what a shard does) and equals its place in the whole.
  std::vector<float> single(60);
  int32_t label = -1;
  const size_t index = 617;
  a.gather({&index, 1}, single.data(), &label);
  EXPECT_TRUE(std::equal(single.begin(), single.end(), first.first.begin() + 617 * 60));
  EXPECT_EQ(label, first.second[617]);
  EXPECT_THROW(SyntheticDataset({1, 1, 1}, 1, 10, 1, Split::train), UsageError);
}

TEST(DataSource, ParsesFashionMnistAndSyntheticShapes) {
  EXPECT_EQ(parse_data_source("fashion-mnist", "/d").kind, DataSource::Kind::fashion_mnist);
  const DataSource source = parse_data_source("synthetic:3x32x16", "/d");
  EXPECT_EQ(source.kind, DataSource::Kind::synthetic);
  EXPECT_EQ(source.shape, (ActivationShape{3, 32, 16}));
  EXPECT_EQ(source.train_size, 60000u);
  EXPECT_EQ(source.test_size, 10000u);
  EXPECT_EQ(parse_data_source("synthetic:1x8x8:600", "/d").test_size, 100u);
  for (const char* bad : {"mnist", "synthetic", "synthetic:3x32", "synthetic:0x3x3", "synthetic:3x3x3:0",
                          "synthetic:axbxc", "synthetic:3x3x3:-1", "synthetic:65536x65536x65536"})
    EXPECT_THROW(parse_data_source(bad, "/d"), UsageError) << bad;
}

// A data set whose sample i is the value i with label i % 10, so batches show which samples they hold.
class IndexDataset final : public Dataset {
 public:
  explicit IndexDataset(size_t size) : size_(size) {}
  size_t size() const override { return size_; }
  ActivationShape sample_shape() const override { return {1, 1, 1}; }
  size_t classes() const override { return 10; }
  std::string description() const override { return "index"; }
  void gather(std::span<const size_t> indices, float* images, int32_t* labels) const override {
    for (size_t k = 0; k < indices.size(); ++k) {
      images[k] = float(indices[k]);
      labels[k] = int32_t(indices[k] % 10);
    }
  }

 private:
  size_t size_;
};

std::vector<size_t> batch_indices(BatchLoader& loader, size_t epoch, size_t step, BatchInfo* info = nullptr) {
  std::vector<float> images(loader.max_local_batch());
  std::vector<int32_t> labels(images.size());
  const BatchInfo got = loader.load(epoch, step, images.data(), labels.data());
  if (info) *info = got;
  return {images.begin(), images.begin() + long(got.local_size)};
}

TEST(BatchLoader, ShufflesDeterministicallyPerSeedAndEpoch) {
  IndexDataset data(103);
  BatchLoader loader(data, 10, 5, true), same(data, 10, 5, true), other(data, 10, 6, true);
  EXPECT_EQ(loader.steps_per_epoch(), 11u);
  std::vector<size_t> order = loader.order(0);
  EXPECT_EQ(order, same.order(0));
  EXPECT_NE(order, loader.order(1));
  EXPECT_NE(order, other.order(0));
  std::sort(order.begin(), order.end());
  for (size_t i = 0; i < order.size(); ++i) ASSERT_EQ(order[i], i);
  // Batches cut the epoch's order in sequence; the last one is partial (103 = 10 x 10 + 3).
  std::vector<size_t> seen;
  for (size_t step = 0; step < loader.steps_per_epoch(); ++step) {
    BatchInfo info;
    const auto batch = batch_indices(loader, 0, step, &info);
    EXPECT_EQ(info.global_size, step == 10 ? 3u : 10u);
    seen.insert(seen.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(seen, loader.order(0));
  BatchLoader unshuffled(data, 10, 5, false);
  EXPECT_EQ(batch_indices(unshuffled, 3, 2), (std::vector<size_t>{20, 21, 22, 23, 24, 25, 26, 27, 28, 29}));
  EXPECT_THROW(loader.load(0, 11, nullptr, nullptr), Error);
}

TEST(BatchLoader, ShardsOfAGlobalBatchAreItsContiguousParts) {
  IndexDataset data(103);
  BatchLoader whole(data, 10, 5, true);
  for (size_t ranks : {2u, 3u, 4u}) {
    std::vector<std::unique_ptr<BatchLoader>> shards;
    for (size_t rank = 0; rank < ranks; ++rank)
      shards.push_back(std::make_unique<BatchLoader>(data, 10, 5, true, Shard{rank, ranks}));
    for (size_t step = 0; step < whole.steps_per_epoch(); ++step) {
      std::vector<size_t> joined;
      size_t smallest = SIZE_MAX, largest = 0;
      for (size_t rank = 0; rank < ranks; ++rank) {
        BatchInfo info;
        const auto part = batch_indices(*shards[rank], 2, step, &info);
        EXPECT_EQ(info.local_offset, joined.size());
        joined.insert(joined.end(), part.begin(), part.end());
        smallest = std::min(smallest, part.size());
        largest = std::max(largest, part.size());
        EXPECT_LE(part.size(), shards[rank]->max_local_batch());
      }
      EXPECT_EQ(joined, batch_indices(whole, 2, step)) << ranks << " ranks, step " << step;
      EXPECT_LE(largest - smallest, 1u);
    }
  }
  // The rank just past the last shard (a parameter server) loads nothing; further ones do not exist.
  BatchLoader server(data, 10, 5, true, Shard{2, 2});
  EXPECT_TRUE(batch_indices(server, 0, 0).empty());
  EXPECT_THROW(BatchLoader(data, 10, 5, true, Shard{3, 2}), Error);
  EXPECT_THROW(BatchLoader(data, 0, 5, true), UsageError);
}

}  // namespace
}  // namespace cclab::train
