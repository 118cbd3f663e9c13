// Single-process training on synthetic data, and the decompositions the parallel modes rely on:
// sharded batches with gradients summed (data-parallel) and micro-batches with accumulated
// gradients (pipeline-parallel) give the single-process gradients.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "backends/onednn/onednn_backend.h"
#include "cclab/error.h"
#include "data/loader.h"
#include "model/loss.h"
#include "model/model.h"
#include "model/spec.h"
#include "results.h"
#include "trainer.h"

namespace cclab::train {
namespace {

TrainOptions small_run() {
  TrainOptions options;
  options.model = "conv3x3:4,relu,pool2,fc:16,relu,fc:4";
  options.data = "synthetic:1x8x8:1200";
  options.epochs = 3;
  options.batch = 32;
  options.learning_rate = 0.05;
  options.threads = 1;
  return options;
}

TEST(Training, LossDecreasesOnSyntheticDataAndRecordsAreWritten) {
  const std::string json =
      (std::filesystem::temp_directory_path() / ("cclab_training_test_" + std::to_string(getpid()) + ".jsonl"))
          .string();
  std::filesystem::remove(json);
  TrainOptions options = small_run();
  options.json_path = json;
  std::ostringstream out;
  const std::vector<std::string> argv{"cclab", "train", "(test)"};
  const TrainSummary summary = train_single_process(options, argv, out);
  ASSERT_EQ(summary.epoch_summaries.size(), 3u);
  EXPECT_LT(summary.epoch_summaries[2].train_loss, 0.7 * summary.epoch_summaries[0].train_loss) << out.str();
  ASSERT_TRUE(summary.test.has_value());
  EXPECT_GT(summary.test->accuracy, 0.6) << out.str();  // chance is 0.25
  EXPECT_EQ(summary.steps, 3u * 38u);                    // 1200 / 32 rounded up, per epoch
  EXPECT_NE(out.str().find("final_loss"), std::string::npos);

  const auto records = read_results(json);
  ASSERT_EQ(records.size(), 4u);
  for (size_t epoch = 0; epoch < 3; ++epoch) {
    EXPECT_EQ(records[epoch]["kind"], "epoch");
    EXPECT_EQ(records[epoch]["epoch"], epoch + 1);
    EXPECT_EQ(records[epoch]["schema"], "cclab.result/1");
  }
  const nlohmann::json& train = records[3];
  EXPECT_EQ(train["kind"], "train");
  EXPECT_EQ(train["argv"], nlohmann::json(argv));
  for (const char* key : {"model", "mode", "ranks", "grid", "global_batch", "steps", "epochs", "final_loss",
                          "test_accuracy", "images_per_s", "step_time_s", "sent_bytes_per_rank",
                          "predicted_sent_bytes_per_rank", "phases", "env"})
    EXPECT_TRUE(train.contains(key)) << key;
  EXPECT_EQ(train["mode"], "data");
  EXPECT_EQ(train["ranks"], 1);
  EXPECT_EQ(train["grid"]["dp"], 1);
  EXPECT_EQ(train["global_batch"], 32);
  EXPECT_DOUBLE_EQ(train["final_loss"].get<double>(), summary.final_loss);
  EXPECT_DOUBLE_EQ(train["test_accuracy"].get<double>(), summary.test->accuracy);
  EXPECT_GT(train["images_per_s"].get<double>(), 0);
  // The first step is the warm-up: trained and counted in the losses, left out of the rates.
  EXPECT_EQ(train["timed_steps"], 3 * 38 - 1);
  EXPECT_GT(train["first_step_s"].get<double>(), 0);
  EXPECT_EQ(records[0]["timed_steps"], 37);
  EXPECT_EQ(records[1]["timed_steps"], 38);
  EXPECT_GE(records[0]["time_s"].get<double>(), train["first_step_s"].get<double>());
  EXPECT_NE(out.str().find("the first step took"), std::string::npos);
  for (const char* part : {"compute", "comm", "idle", "total"}) EXPECT_TRUE(train["step_time_s"].contains(part));
  EXPECT_EQ(train["step_time_s"]["comm"], 0.0);
  for (const char* phase : {"forward", "backward", "grad_sync"}) {
    EXPECT_EQ(train["phases"][phase]["sent_bytes_per_rank"], 0);
    EXPECT_EQ(train["phases"][phase]["predicted_sent_bytes_per_rank"], 0);
  }
  std::filesystem::remove(json);
}

TEST(Training, SameSeedSameLossesAndStepsModeStopsEarly) {
  TrainOptions options = small_run();
  options.evaluate = false;
  options.epochs = 1;
  options.steps = 50;  // crosses into the second epoch
  std::ostringstream out;
  const TrainSummary first = train_single_process(options, {}, out);
  const TrainSummary second = train_single_process(options, {}, out);
  EXPECT_EQ(first.steps, 50u);
  EXPECT_EQ(first.epoch_summaries.size(), 2u);
  EXPECT_EQ(first.epoch_summaries[1].steps, 12u);
  EXPECT_NEAR(first.epochs, 50.0 / 38.0, 1e-12);
  EXPECT_EQ(first.final_loss, second.final_loss);
  EXPECT_EQ(first.last_step_loss, second.last_step_loss);
  EXPECT_FALSE(first.test.has_value());
  EXPECT_EQ(first.timed_steps, 49u);
  options.steps = 1;  // the only step is timed: there is no warm-up to leave out
  const TrainSummary one = train_single_process(options, {}, out);
  EXPECT_EQ(one.timed_steps, 1u);
  EXPECT_EQ(one.first_step_s, 0.0);
  EXPECT_GT(one.images_per_s, 0.0);
  options.steps = 50;
  options.seed = 2;
  EXPECT_NE(train_single_process(options, {}, out).last_step_loss, first.last_step_loss);
}

TEST(Training, BadOptionsAreUsageErrors) {
  std::ostringstream out;
  TrainOptions options = small_run();
  options.model = "conv3x3:4,relu,fc:3";
  options.data = "fashion-mnist";
  options.data_directory = "/nonexistent";
  EXPECT_THROW(train_single_process(options, {}, out), UsageError);  // 3 outputs, 10 classes
  options.model = "lenet5";
  try {
    train_single_process(options, {}, out);
    ADD_FAILURE();
  } catch (const UsageError& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/train-images-idx3-ubyte.gz"), std::string::npos);
  }
  options = small_run();
  options.learning_rate = -1;
  EXPECT_THROW(train_single_process(options, {}, out), UsageError);
  options = small_run();
  options.momentum = 1;
  EXPECT_THROW(train_single_process(options, {}, out), UsageError);
}

struct Gradients {
  std::vector<float> values;
};

// Gradient of the mean loss over global batch `step` of a loader with `shards` data-parallel shards
// and `micro_batches` micro-batches per shard, summed over shards as an allreduce would.
std::vector<float> decomposed_gradient(const std::vector<LayerConfig>& layers, const Dataset& data, size_t batch,
                                       size_t shards, size_t micro_batches) {
  OnednnBackend backend;
  std::vector<float> total;
  for (size_t rank = 0; rank < shards; ++rank) {
    Model model(layers, backend, 11);
    BatchLoader loader(data, batch, 3, true, Shard{rank, shards});
    const size_t local = loader.max_local_batch();
    std::vector<float> images(local * data.sample_shape().elements());
    std::vector<int32_t> labels(local);
    const BatchInfo info = loader.load(0, 1, images.data(), labels.data());
    Activations activations(model, local);
    const size_t per_micro = (info.local_size + micro_batches - 1) / micro_batches;
    for (size_t m = 0, begin = 0; begin < info.local_size; ++m, begin += per_micro) {
      const size_t count = std::min(per_micro, info.local_size - begin);
      const size_t elements = data.sample_shape().elements();
      std::copy(images.begin() + long(begin * elements), images.begin() + long((begin + count) * elements),
                activations.input());
      model.forward(activations, count, true);
      softmax_cross_entropy(activations.output(), labels.data() + begin, count, 5, activations.output_gradient(),
                            double(info.global_size));
      BackwardOptions options;
      options.accumulate = m > 0;
      model.backward(activations, count, options);
    }
    const auto grads = model.parameters().gradients();
    if (total.empty()) total.assign(grads.size(), 0.0f);
    for (size_t i = 0; i < grads.size(); ++i) total[i] += grads[i];
  }
  return total;
}

TEST(Training, ShardsAndMicroBatchesDecomposeTheSingleProcessGradient) {
  const std::vector<LayerConfig> layers = parse_model_spec("conv3x3:4,relu,pool2,fc:12,relu,fc:5", {2, 6, 6});
  SyntheticDataset data({2, 6, 6}, 5, 300, 9, Split::train);
  const std::vector<float> single = decomposed_gradient(layers, data, 24, 1, 1);
  for (auto [shards, micro_batches] : {std::pair<size_t, size_t>{2, 1}, {3, 1}, {1, 4}, {2, 3}}) {
    const std::vector<float> split = decomposed_gradient(layers, data, 24, shards, micro_batches);
    ASSERT_EQ(split.size(), single.size());
    double worst = 0, largest = 0;
    for (size_t i = 0; i < single.size(); ++i) {
      worst = std::max(worst, double(std::fabs(split[i] - single[i])));
      largest = std::max(largest, double(std::fabs(single[i])));
    }
    EXPECT_LT(worst, 1e-5 * std::max(1.0, largest)) << shards << " shards x " << micro_batches << " micro-batches";
  }
}

}  // namespace
}  // namespace cclab::train
