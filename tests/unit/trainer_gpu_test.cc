// The trainers' GPU backend (backends/cuda/) on a GPU: every layer kind against the plain reference
// layers, the loss and SGD kernels against the host loops, and 20 training steps of LeNet-5 whose
// losses follow the CPU's to 1e-3. Without a usable GPU, cuDNN or cuBLAS every test skips and says
// why (or fails, under CCLAB_REQUIRE_GPU, as ci/gpu-check.sh runs it).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "backends/cuda/cuda_backend.h"
#include "backends/reference/reference_backend.h"
#include "layer_configs.h"
#include "model/compute_device.h"
#include "model/loss.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "model/spec.h"

namespace cclab::train {
namespace {

class TrainerGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = cuda_training_unavailable_reason();
    if (!reason.empty()) {
      if (std::getenv("CCLAB_REQUIRE_GPU") != nullptr) FAIL() << reason;
      GTEST_SKIP() << reason;
    }
    gpu_ = open_cuda_backend(0);
  }
  void TearDown() override { use_compute_device(nullptr); }

  GpuBackend gpu_;
};

FloatBuffer random_values(size_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1, 1);
  FloatBuffer values(count);
  for (float& v : values) v = value(rng);
  return values;
}

void expect_close(const FloatBuffer& actual, const FloatBuffer& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t wrong = 0;
  for (size_t i = 0; i < actual.size(); ++i)
    if (!(std::fabs(actual[i] - expected[i]) <= 1e-4f * (1.0f + std::fabs(expected[i])))) {
      if (wrong++ < 5) ADD_FAILURE() << what << "[" << i << "]: " << actual[i] << " vs " << expected[i];
    }
  EXPECT_EQ(wrong, 0u) << what;
}

// Forward and two backward passes (the second accumulating) of one layer on `backend`, on buffers of
// the installed device.
struct LayerRun {
  FloatBuffer output, input_grad, parameter_grads;
};
LayerRun run_layer(Backend& backend, const LayerConfig& config, const FloatBuffer& parameters, const FloatBuffer& input,
                   const FloatBuffer& output_grad, size_t batch) {
  std::unique_ptr<Layer> layer = backend.make_layer(config);
  FloatBuffer values(parameters.begin(), parameters.end()), gradients(parameters.size(), 0.0f);
  layer->bind(values, gradients);
  FloatBuffer in(input.begin(), input.end()), out_grad(output_grad.begin(), output_grad.end());
  LayerRun run;
  run.output.assign(batch * layer->output_shape().elements(), 0.0f);
  run.input_grad.assign(input.size(), 0.0f);
  ByteBuffer workspace(layer->workspace_bytes(batch));
  layer->forward({in.data(), run.output.data(), workspace.data(), batch, true});
  for (bool accumulate : {false, true})
    layer->backward(
        {in.data(), run.output.data(), out_grad.data(), run.input_grad.data(), workspace.data(), batch, accumulate});
  run.parameter_grads.assign(gradients.begin(), gradients.end());
  return run;
}

TEST_F(TrainerGpu, EveryLayerKindMatchesTheReferenceLayers) {
  use_compute_device(gpu_.device);
  ReferenceBackend reference;
  const LayerConfig conv = convolution({3, 9, 7}, 3, 5, 1, 1);
  const LayerConfig fc = fully_connected({12, 1, 1}, 7);
  const std::vector<LayerConfig> configs = {
      conv,
      convolution({2, 11, 12}, 5, 4, 2, 0),
      column_slice(conv, 1, 2),
      row_slice(conv, 1, 2),
      max_pool({3, 8, 8}, 2, 2),
      max_pool({2, 9, 7}, 3, 2, 1),
      relu({3, 5, 5}),
      fully_connected({4, 3, 3}, 6),
      fc,
      column_slice(fc, 0, 2),
      row_slice(fc, 0, 2),
      row_slice(fc, 1, 3),
  };
  std::mt19937 rng(11);
  const size_t batch = 3;
  for (const LayerConfig& config : configs) {
    const FloatBuffer parameters = random_values(config.parameter_count(), rng);
    const FloatBuffer input = random_values(batch * config.input.elements(), rng);
    const FloatBuffer output_grad = random_values(batch * config.output().elements(), rng);
    const LayerRun expected = run_layer(reference, config, parameters, input, output_grad, batch);
    const LayerRun actual = run_layer(*gpu_.layers, config, parameters, input, output_grad, batch);
    expect_close(actual.output, expected.output, config.name() + " output");
    expect_close(actual.input_grad, expected.input_grad, config.name() + " input gradient");
    expect_close(actual.parameter_grads, expected.parameter_grads, config.name() + " parameter gradients");
  }
}

TEST_F(TrainerGpu, TheLossAndTheUpdateEqualTheHostLoops) {
  std::mt19937 rng(5);
  const size_t batch = 37, classes = 10;
  const FloatBuffer scores_on_host = random_values(batch * classes, rng);
  std::vector<int32_t> labels(batch);
  for (size_t n = 0; n < batch; ++n) labels[n] = int32_t(n * 7 % classes);
  FloatBuffer host_grad(batch * classes);
  const LossResult host =
      softmax_cross_entropy(scores_on_host.data(), labels.data(), batch, classes, host_grad.data(), 64.0);
  const FloatBuffer velocity_start = random_values(1000, rng), gradients_on_host = random_values(1000, rng);
  FloatBuffer host_values = random_values(1000, rng);
  const FloatBuffer values_start = host_values;
  SgdMomentum host_sgd(1000, 0.05f, 0.9f);
  std::copy(velocity_start.begin(), velocity_start.end(), host_sgd.velocity().begin());
  host_sgd.step_range(host_values, gradients_on_host, 0);

  use_compute_device(gpu_.device);
  const FloatBuffer scores(scores_on_host.begin(), scores_on_host.end());
  FloatBuffer grad(batch * classes);
  const LossResult on_gpu = softmax_cross_entropy(scores.data(), labels.data(), batch, classes, grad.data(), 64.0);
  EXPECT_NEAR(on_gpu.loss_sum, host.loss_sum, 1e-9 * host.loss_sum);
  EXPECT_EQ(on_gpu.correct, host.correct);
  expect_close(grad, host_grad, "loss gradient");
  FloatBuffer values = values_start;
  const FloatBuffer gradients(gradients_on_host.begin(), gradients_on_host.end());
  SgdMomentum sgd(1000, 0.05f, 0.9f);
  std::copy(velocity_start.begin(), velocity_start.end(), sgd.velocity().begin());
  sgd.step_range(values, gradients, 0);
  expect_close(values, host_values, "updated values");
  EXPECT_THROW(
      softmax_cross_entropy(scores.data(), std::vector<int32_t>(batch, 10).data(), batch, classes, nullptr, 1.0),
      std::exception);
}

// LeNet-5, 20 steps of SGD with momentum on fixed random batches: the GPU's losses against the
// reference layers' on the host device, step by step.
std::vector<double> train_lenet5(Backend& backend) {
  const ModelPlan plan = plan_model("lenet5", {1, 28, 28});
  Model model(plan.layers, backend, 3);
  SgdMomentum optimizer(model.parameters().size(), 0.05f, 0.9f);
  const size_t batch = 16;
  Activations activations(model, batch);
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> pixel(-1, 1);
  std::vector<double> losses;
  for (int step = 0; step < 20; ++step) {
    for (size_t i = 0; i < batch * 784; ++i) activations.input()[i] = pixel(rng);
    std::vector<int32_t> labels(batch);
    for (int32_t& label : labels) label = int32_t(rng() % 10);
    model.forward(activations, batch, true);
    losses.push_back(softmax_cross_entropy(activations.output(), labels.data(), batch, 10,
                                           activations.output_gradient(), double(batch))
                         .loss_sum /
                     double(batch));
    model.backward(activations, batch, {});
    optimizer.step(model.parameters());
  }
  return losses;
}

TEST_F(TrainerGpu, LeNet5LossesFollowTheCpuOverTwentySteps) {
  ReferenceBackend reference;
  const std::vector<double> cpu = train_lenet5(reference);
  use_compute_device(gpu_.device);
  const std::vector<double> gpu = train_lenet5(*gpu_.layers);
  ASSERT_EQ(gpu.size(), cpu.size());
  for (size_t step = 0; step < cpu.size(); ++step)
    EXPECT_NEAR(gpu[step], cpu[step], 1e-3 * std::fabs(cpu[step])) << "step " << step;
  std::cout << "# GPU " << gpu_.gpu << ", cuDNN " << gpu_.cudnn_version << ", cuBLAS " << gpu_.cublas_version
            << ": step 1 loss " << gpu.front() << " (CPU " << cpu.front() << "), step 20 " << gpu.back() << " (CPU "
            << cpu.back() << ")\n";
}

}  // namespace
}  // namespace cclab::train
