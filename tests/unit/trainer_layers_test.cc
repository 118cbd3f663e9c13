// Layers and models of the trainers: every layer kind's gradients against finite differences (both
// backends) and the oneDNN layers against the plain reference; the model's flat buffers, gradient
// hook order, layer ranges (pipeline stages) and tensor-parallel slices.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "backends/onednn/onednn_backend.h"
#include "backends/reference/reference_backend.h"
#include "cclab/error.h"
#include "layer_configs.h"
#include "model/loss.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "model/spec.h"

namespace cclab::train {
namespace {

// One layer instance with its own parameter buffers (the layer points into them: write values with
// set_parameters, never by assigning the vectors).
struct LayerUnderTest {
  std::unique_ptr<Layer> layer;
  std::vector<float> parameters, gradients;

  LayerUnderTest(Backend& backend, const LayerConfig& config) : layer(backend.make_layer(config)) {
    parameters.assign(config.parameter_count(), 0.0f);
    gradients.assign(config.parameter_count(), 0.0f);
    layer->bind(parameters, gradients);
  }
  void set_parameters(const std::vector<float>& values) { std::copy(values.begin(), values.end(), parameters.begin()); }
};

struct Pass {
  std::vector<float> output, input_grad, parameter_grads;
};

// Forward, then backward with output gradient `output_grad`, of `layer` on `input`.
Pass run(LayerUnderTest& test, const std::vector<float>& input, const std::vector<float>& output_grad, size_t batch,
         bool accumulate = false) {
  Layer& layer = *test.layer;
  Pass pass;
  pass.output.assign(batch * layer.output_shape().elements(), 0.0f);
  pass.input_grad.assign(input.size(), 0.0f);
  std::vector<std::byte> workspace(layer.workspace_bytes(batch));
  layer.forward({input.data(), pass.output.data(), workspace.data(), batch, true});
  layer.backward({input.data(), pass.output.data(), output_grad.data(), pass.input_grad.data(), workspace.data(), batch,
                  accumulate});
  pass.parameter_grads = test.gradients;
  return pass;
}

std::vector<float> forward(LayerUnderTest& test, const std::vector<float>& input, size_t batch) {
  std::vector<float> output(batch * test.layer->output_shape().elements());
  std::vector<std::byte> workspace(test.layer->workspace_bytes(batch));
  test.layer->forward({input.data(), output.data(), workspace.data(), batch, true});
  return output;
}

// Inputs whose values are pairwise at least 0.05 apart and at least 0.025 away from 0: a finite
// difference step of 0.01 then never crosses a ReLU kink or changes which element a pool picks.
std::vector<float> separated_values(size_t count, std::mt19937& rng) {
  std::vector<float> values(count);
  std::iota(values.begin(), values.end(), 0.0f);
  std::shuffle(values.begin(), values.end(), rng);
  for (float& value : values) value = (value - float(count / 2) + 0.5f) * 0.05f;
  return values;
}

std::vector<float> uniform_values(size_t count, std::mt19937& rng, float bound = 1.0f) {
  std::uniform_real_distribution<float> distribution(-bound, bound);
  std::vector<float> values(count);
  for (float& value : values) value = distribution(rng);
  return values;
}

// The scalar the checks differentiate: L = sum(output * weights), in double.
double weighted_sum(const std::vector<float>& output, const std::vector<float>& weights) {
  double sum = 0;
  for (size_t i = 0; i < output.size(); ++i) sum += double(output[i]) * weights[i];
  return sum;
}

// Up to `limit` indices of [0, count), spread out (every index when count <= limit).
std::vector<size_t> sample_indices(size_t count, size_t limit) {
  std::vector<size_t> indices;
  const size_t stride = std::max<size_t>(1, count / limit);
  for (size_t i = 0; i < count; i += stride) indices.push_back(i);
  return indices;
}

void expect_close(const std::vector<float>& actual, const std::vector<float>& expected, double tolerance,
                  const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double allowed = tolerance * std::max(1.0, std::fabs(double(expected[i])));
    if (std::fabs(double(actual[i]) - expected[i]) > allowed && bad++ < 5)
      ADD_FAILURE() << what << " element " << i << ": " << actual[i] << " vs " << expected[i];
  }
  EXPECT_EQ(bad, 0u) << what;
}

// Checks the analytic input and parameter gradients of one backend's layer against central
// differences of L = sum(output * R).
void check_against_finite_differences(Backend& backend, const LayerConfig& config, size_t batch, double tolerance) {
  std::mt19937 rng(7);
  LayerUnderTest test(backend, config);
  test.set_parameters(uniform_values(test.parameters.size(), rng, 0.5f));
  std::vector<float> input = separated_values(batch * config.input.elements(), rng);
  const std::vector<float> output_weights = uniform_values(batch * config.output().elements(), rng);
  const Pass analytic = run(test, input, output_weights, batch);
  constexpr float kStep = 0.01f;
  auto difference = [&](float& variable) {
    const float saved = variable;
    variable = saved + kStep;
    const double plus = weighted_sum(forward(test, input, batch), output_weights);
    variable = saved - kStep;
    const double minus = weighted_sum(forward(test, input, batch), output_weights);
    variable = saved;
    return (plus - minus) / (2.0 * kStep);
  };
  for (size_t i : sample_indices(input.size(), 150)) {
    const double numeric = difference(input[i]);
    EXPECT_NEAR(analytic.input_grad[i], numeric, tolerance * std::max(1.0, std::fabs(numeric)))
        << backend.name() << " " << config.name() << " input " << i;
  }
  for (size_t i : sample_indices(test.parameters.size(), 150)) {
    const double numeric = difference(test.parameters[i]);
    EXPECT_NEAR(analytic.parameter_grads[i], numeric, tolerance * std::max(1.0, std::fabs(numeric)))
        << backend.name() << " " << config.name() << " parameter " << i;
  }
}

// Forward output, input gradient and parameter gradients of oneDNN against the reference, then the
// same with accumulate on (gradients add to what is there).
void check_against_reference(const LayerConfig& config, size_t batch) {
  OnednnBackend onednn;
  ReferenceBackend reference;
  std::mt19937 rng(11);
  LayerUnderTest fast(onednn, config), slow(reference, config);
  const std::vector<float> parameters = uniform_values(config.parameter_count(), rng, 0.5f);
  fast.set_parameters(parameters);
  slow.set_parameters(parameters);
  const std::vector<float> input = uniform_values(batch * config.input.elements(), rng);
  const std::vector<float> output_grad = uniform_values(batch * config.output().elements(), rng);
  const Pass expected = run(slow, input, output_grad, batch);
  const Pass actual = run(fast, input, output_grad, batch);
  const std::string name = config.name() + " on " + config.input.to_string() + " x" + std::to_string(batch);
  expect_close(actual.output, expected.output, 1e-4, name + " output");
  expect_close(actual.input_grad, expected.input_grad, 1e-4, name + " input gradient");
  expect_close(actual.parameter_grads, expected.parameter_grads, 1e-4, name + " parameter gradients");
  // Accumulate: a second backward adds the same gradients again.
  const std::vector<float> first = fast.gradients;
  const Pass twice = run(fast, input, output_grad, batch, true);
  std::vector<float> doubled(first.size());
  std::transform(first.begin(), first.end(), doubled.begin(), [](float g) { return 2 * g; });
  expect_close(twice.parameter_grads, doubled, 1e-5, name + " accumulated gradients");
}

std::vector<LayerConfig> layer_cases() {
  std::vector<LayerConfig> cases = {
      convolution({3, 7, 7}, 3, 4, 1, 1),      // 'same'
      convolution({2, 9, 9}, 5, 3, 1, 0),      // 'valid'
      convolution({3, 8, 8}, 3, 4, 2, 1),      // strided, padded
      convolution({5, 4, 4}, 1, 6, 1, 0),      // 1x1
      convolution({1, 12, 12}, 5, 6, 1, 2),    // LeNet-5's first layer, smaller
      max_pool({3, 8, 8}, 2, 2),               // LeNet-5's pools
      max_pool({2, 9, 9}, 3, 2),               // overlapping windows
      max_pool({2, 7, 7}, 3, 2, 1),            // padded (padding never wins)
      relu({3, 5, 5}),
      fully_connected({3, 4, 4}, 5),           // reads an NHWC activation, flattened
      fully_connected({7, 1, 1}, 4),
  };
  LayerConfig unbiased = fully_connected({6, 1, 1}, 3);
  unbiased.bias = false;
  cases.push_back(unbiased);
  LayerConfig unbiased_convolution = convolution({2, 6, 6}, 3, 2, 1, 1);
  unbiased_convolution.bias = false;
  cases.push_back(unbiased_convolution);
  return cases;
}

TEST(LayerGradients, ReferenceMatchesFiniteDifferences) {
  ReferenceBackend reference;
  for (const LayerConfig& config : layer_cases()) check_against_finite_differences(reference, config, 2, 2e-3);
}

TEST(LayerGradients, OnednnMatchesFiniteDifferences) {
  OnednnBackend onednn;
  for (const LayerConfig& config : layer_cases()) check_against_finite_differences(onednn, config, 2, 5e-3);
}

TEST(LayerGradients, OnednnMatchesReference) {
  for (const LayerConfig& config : layer_cases()) {
    check_against_reference(config, 3);
    check_against_reference(config, 1);
  }
}

TEST(LayerGradients, OnednnMatchesReferenceOnLenet5Shapes) {
  const ModelPlan plan = plan_model("lenet5", {1, 28, 28});
  for (const LayerConfig& config : plan.layers) check_against_reference(config, 4);
}

// From a batch of 16 on, a fully connected layer's forward is a matmul primitive, not the inner
// product: both paths, with and without bias.
TEST(LayerGradients, FullyConnectedMatchesReferenceAtLargeBatches) {
  LayerConfig unbiased = fully_connected({4, 3, 3}, 7);
  unbiased.bias = false;
  for (const LayerConfig& config : {fully_connected({4, 3, 3}, 7), unbiased})
    for (size_t batch : {15, 16, 33}) check_against_reference(config, batch);
}

TEST(LayerGradients, PoolAndReluLeaveInputGradientAloneWhenNotAsked) {
  OnednnBackend onednn;
  for (const LayerConfig& config : {max_pool({2, 4, 4}, 2, 2), relu({2, 4, 4})}) {
    LayerUnderTest test(onednn, config);
    std::vector<float> input(2 * 32, 1.0f), output(2 * config.output().elements()), grad(output.size(), 1.0f);
    std::vector<std::byte> workspace(test.layer->workspace_bytes(2));
    test.layer->forward({input.data(), output.data(), workspace.data(), 2, true});
    EXPECT_NO_THROW(test.layer->backward({input.data(), output.data(), grad.data(), nullptr, workspace.data(), 2}));
  }
}

TEST(Loss, SoftmaxCrossEntropyValuesAndGradient) {
  // Equal scores: the loss is log(classes) and the gradient (1/C - onehot) / normaliser.
  std::vector<float> scores(2 * 4, 0.5f), grad(8);
  std::vector<int32_t> labels{1, 3};
  LossResult result = softmax_cross_entropy(scores.data(), labels.data(), 2, 4, grad.data(), 4.0);
  EXPECT_NEAR(result.loss_sum, 2 * std::log(4.0), 1e-6);
  EXPECT_NEAR(grad[0], 0.25 / 4, 1e-7);
  EXPECT_NEAR(grad[1], (0.25 - 1) / 4, 1e-7);
  EXPECT_EQ(result.correct, 0u);  // ties: class 0 wins, and neither label is 0

  // Finite differences of the mean loss on random scores (large ones: the shift must keep exp finite).
  std::mt19937 rng(3);
  scores = uniform_values(3 * 5, rng, 40.0f);
  labels = {4, 0, 2};
  grad.assign(scores.size(), 0.0f);
  softmax_cross_entropy(scores.data(), labels.data(), 3, 5, grad.data(), 3.0);
  for (size_t i = 0; i < scores.size(); ++i) {
    std::vector<float> shifted = scores;
    shifted[i] += 1e-2f;
    const double plus = softmax_cross_entropy(shifted.data(), labels.data(), 3, 5, nullptr, 1).loss_sum;
    shifted[i] -= 2e-2f;
    const double minus = softmax_cross_entropy(shifted.data(), labels.data(), 3, 5, nullptr, 1).loss_sum;
    EXPECT_NEAR(grad[i], (plus - minus) / 2e-2 / 3.0, 1e-3) << i;
  }
  labels[0] = 5;
  EXPECT_THROW(softmax_cross_entropy(scores.data(), labels.data(), 3, 5, nullptr, 1), Error);
}

TEST(Optimizer, SgdMomentumFollowsPytorchsFormula) {
  SgdMomentum sgd(3, 0.5f, 0.9f);
  std::vector<float> values{1, 2, 3}, grads{1, -1, 0.5};
  sgd.step_range(values, grads, 0);  // v = g; p -= 0.5 v
  EXPECT_FLOAT_EQ(values[0], 0.5f);
  EXPECT_FLOAT_EQ(values[1], 2.5f);
  sgd.step_range(values, grads, 0);  // v = 0.9 g + g = 1.9 g
  EXPECT_FLOAT_EQ(values[0], 0.5f - 0.5f * 1.9f);
  EXPECT_FLOAT_EQ(values[2], 3.0f - 0.25f - 0.5f * 0.95f);
  std::vector<float> tail{10}, tail_grad{2};
  sgd.step_range(tail, tail_grad, 2);  // velocity of element 2 is 0.95 so far
  EXPECT_FLOAT_EQ(tail[0], 10.0f - 0.5f * (0.9f * 0.95f + 2.0f));
  EXPECT_THROW(sgd.step_range(tail, tail_grad, 3), Error);
}

TEST(Model, FlatBuffersAreLaidOutInReverseLayerOrder) {
  OnednnBackend backend;
  const ModelPlan plan = plan_model("lenet5", {1, 28, 28});
  Model model(plan.layers, backend, 1);
  EXPECT_EQ(model.parameters().size(), 61706u);
  EXPECT_EQ(model.parameters().range(10).offset, 0u);  // fc:10 first
  EXPECT_EQ(model.parameters().range(0).offset + model.parameters().range(0).count, 61706u);
  for (size_t i = 0; i < model.size(); ++i)
    EXPECT_EQ(model.layer(i).weights().data(),
              model.parameters().values().data() + model.parameters().range(i).offset);
}

TEST(Model, GradientHooksArriveInIncreasingOffsetOrderAndCoverTheBuffer) {
  OnednnBackend backend;
  const ModelPlan plan = plan_model("lenet5", {1, 28, 28});
  Model model(plan.layers, backend, 1);
  Activations activations(model, 8);
  std::mt19937 rng(5);
  const std::vector<float> input = uniform_values(8 * 784, rng);
  std::copy(input.begin(), input.end(), activations.input());
  model.forward(activations, 8, true);
  std::vector<int32_t> labels{0, 1, 2, 3, 4, 5, 6, 7};
  softmax_cross_entropy(activations.output(), labels.data(), 8, 10, activations.output_gradient(), 8);
  std::vector<ParameterRange> seen;
  std::vector<float> snapshot_at_hook;
  BackwardOptions options;
  options.on_gradients_ready = [&](const ParameterRange& range) {
    seen.push_back(range);
    // The range's gradients are final when the hook runs.
    const auto grads = model.parameters().gradients().subspan(range.offset, range.count);
    snapshot_at_hook.insert(snapshot_at_hook.end(), grads.begin(), grads.end());
  };
  model.backward(activations, 8, options);
  ASSERT_EQ(seen.size(), 5u);  // two convolutions, three fc
  size_t watermark = 0;
  for (const ParameterRange& range : seen) {
    EXPECT_EQ(range.offset, watermark);
    watermark += range.count;
  }
  EXPECT_EQ(watermark, model.parameters().size());
  EXPECT_EQ(seen.front().layer, 10u);
  EXPECT_EQ(seen.back().layer, 0u);
  const auto final_grads = model.parameters().gradients();
  EXPECT_TRUE(std::equal(final_grads.begin(), final_grads.end(), snapshot_at_hook.begin()));
}

// Pipeline stages: a model cut into two ranges of layers starts from the same weights, and running
// the stages one after the other (sending the boundary activation forward and its gradient back)
// gives the whole model's output and gradients.
TEST(Model, StagesOfLayerRangesComposeToTheWholeModel) {
  OnednnBackend backend;
  const ModelPlan plan = plan_model("lenet5", {1, 28, 28});
  const size_t cut = 6;  // stage 0: the convolution stack; stage 1: the fc layers
  Model whole(plan.layers, backend, 42);
  Model first({plan.layers.begin(), plan.layers.begin() + cut}, backend, 42);
  Model second({plan.layers.begin() + cut, plan.layers.end()}, backend, 42);
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const Layer& expected = whole.layer(i);
    const Layer& actual = i < cut ? first.layer(i) : second.layer(i - cut);
    EXPECT_TRUE(std::equal(expected.weights().begin(), expected.weights().end(), actual.weights().begin())) << i;
    EXPECT_TRUE(std::equal(expected.bias().begin(), expected.bias().end(), actual.bias().begin())) << i;
  }
  const size_t batch = 5;
  std::mt19937 rng(9);
  const std::vector<float> input = uniform_values(batch * 784, rng);
  std::vector<int32_t> labels{3, 1, 4, 1, 5};
  Activations all(whole, batch), front(first, batch), back(second, batch);
  std::copy(input.begin(), input.end(), all.input());
  std::copy(input.begin(), input.end(), front.input());
  whole.forward(all, batch, true);
  first.forward(front, batch, true);
  const size_t boundary = batch * first.output_shape().elements();
  std::copy(front.output(), front.output() + boundary, back.input());  // "send" forward
  second.forward(back, batch, true);
  EXPECT_TRUE(std::equal(all.output(), all.output() + batch * 10, back.output()));
  softmax_cross_entropy(all.output(), labels.data(), batch, 10, all.output_gradient(), batch);
  softmax_cross_entropy(back.output(), labels.data(), batch, 10, back.output_gradient(), batch);
  whole.backward(all, batch, {});
  BackwardOptions send_back;
  send_back.input_gradient = true;
  second.backward(back, batch, send_back);
  std::copy(back.gradient(0), back.gradient(0) + boundary, front.output_gradient());  // "send" back
  first.backward(front, batch, {});
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const Layer& expected = whole.layer(i);
    const Layer& actual = i < cut ? first.layer(i) : second.layer(i - cut);
    for (size_t k = 0; k < expected.parameter_count(); ++k)
      ASSERT_EQ(expected.weight_grads().data()[k], actual.weight_grads().data()[k])
          << "layer " << i << " element " << k;
  }
  // The same ranges run inside one model with explicit [first, last).
  Activations ranged(whole, batch);
  std::copy(input.begin(), input.end(), ranged.input());
  whole.forward(ranged, batch, true, 0, cut);
  whole.forward(ranged, batch, true, cut);
  EXPECT_TRUE(std::equal(all.output(), all.output() + batch * 10, ranged.output()));
}

// Tensor-parallel: column-split convolution (output channels) followed by a row-split fc (input
// channels), Megatron's pair, in 2 equal parts and in 3 unequal ones (8 channels: 3, 3, 2). Each part
// starts from exactly its slice of the whole layers, the column parts' outputs are the whole output's
// channels, and the row parts' outputs sum to the whole.
TEST(Model, TensorParallelSlicesReproduceTheWholeLayers) {
  OnednnBackend backend;
  const std::vector<LayerConfig> layers = parse_model_spec("conv3x3:8,relu,fc:6", {2, 5, 5});
  Model whole(layers, backend, 3);
  const size_t batch = 3;
  std::mt19937 rng(1);
  const std::vector<float> input = uniform_values(batch * 50, rng);
  Activations all(whole, batch);
  std::copy(input.begin(), input.end(), all.input());
  whole.forward(all, batch, true);
  const auto whole_conv = whole.layer(0).weights();
  const size_t conv_weights_per_channel = whole_conv.size() / 8;
  for (size_t parts : {2, 3}) {
    std::vector<float> summed(batch * 6, 0.0f);
    size_t next_channel = 0;
    for (size_t part = 0; part < parts; ++part) {
      LayerConfig conv = column_slice(layers[0], part, parts);
      const size_t begin = conv.outputs.begin, channels = conv.outputs.count;
      EXPECT_EQ(begin, next_channel);
      EXPECT_EQ(channels, 8 / parts + (part < 8 % parts ? 1 : 0));
      next_channel += channels;
      LayerConfig activation = layers[1];
      activation.input = conv.output();
      LayerConfig fc = row_slice(layers[2], part, parts);
      EXPECT_EQ(fc.input, conv.output());
      Model slice({conv, activation, fc}, backend, 3);
      // The conv part's weights are output channels [begin, begin + channels) of the whole: a contiguous run.
      EXPECT_TRUE(std::equal(slice.layer(0).weights().begin(), slice.layer(0).weights().end(),
                             whole_conv.begin() + std::ptrdiff_t(begin * conv_weights_per_channel)));
      EXPECT_EQ(slice.layer(2).bias().size(), part == 0 ? 6u : 0u);
      Activations mine(slice, batch);
      std::copy(input.begin(), input.end(), mine.input());
      slice.forward(mine, batch, true);
      // Column part: its channels of every NHWC pixel of the whole conv output.
      const float* whole_conv_out = all.activation(1);
      const float* part_conv_out = mine.activation(1);
      for (size_t pixel = 0; pixel < batch * 25; ++pixel)
        for (size_t c = 0; c < channels; ++c)
          ASSERT_EQ(part_conv_out[pixel * channels + c], whole_conv_out[pixel * 8 + begin + c]);
      for (size_t k = 0; k < summed.size(); ++k) summed[k] += mine.output()[k];
    }
    EXPECT_EQ(next_channel, 8u);
    expect_close(summed, std::vector<float>(all.output(), all.output() + batch * 6), 1e-5,
                 "row-parallel sum of " + std::to_string(parts) + " parts");
  }
  EXPECT_THROW(column_slice(layers[0], 0, 9), UsageError);  // 8 channels cannot give 9 parts one each
  EXPECT_THROW(column_slice(layers[1], 0, 2), UsageError);  // relu has nothing to split
}

TEST(Model, RejectsLayersThatDoNotChain) {
  OnednnBackend backend;
  std::vector<LayerConfig> layers = parse_model_spec("conv3x3:4,relu,fc:3", {1, 6, 6});
  layers[1].input = {5, 6, 6};
  EXPECT_THROW(Model(layers, backend, 1), UsageError);
}

// Mean loss of `model` on `input`, with the gradients in the model's buffer when `backward`.
double model_loss(Model& model, const std::vector<float>& input, const std::vector<int32_t>& labels, bool backward) {
  const size_t batch = labels.size(), classes = model.output_shape().elements();
  Activations activations(model, batch);
  std::copy(input.begin(), input.end(), activations.input());
  model.forward(activations, batch, true);
  const double loss = softmax_cross_entropy(activations.output(), labels.data(), batch, classes,
                                            activations.output_gradient(), double(batch))
                          .loss_sum / double(batch);
  if (backward) model.backward(activations, batch, {});
  return loss;
}

// A whole model with pools and ReLUs: oneDNN against the reference backend, every gradient.
TEST(Model, OnednnModelMatchesReferenceModel) {
  OnednnBackend onednn;
  ReferenceBackend reference;
  const auto layers = parse_model_spec("conv3x3:4,relu,pool2,conv3x3:6:s2,relu,fc:8,relu,fc:3", {2, 8, 8});
  Model fast(layers, onednn, 5), slow(layers, reference, 5);
  std::mt19937 rng(2);
  const std::vector<float> input = uniform_values(4 * 128, rng);
  const std::vector<int32_t> labels{0, 2, 1, 2};
  EXPECT_NEAR(model_loss(fast, input, labels, true), model_loss(slow, input, labels, true), 1e-5);
  const auto fast_grads = fast.parameters().gradients(), slow_grads = slow.parameters().gradients();
  expect_close({fast_grads.begin(), fast_grads.end()}, {slow_grads.begin(), slow_grads.end()}, 1e-4,
               "model gradients");
}

// The whole oneDNN model's gradient of the mean loss against finite differences, for a few
// parameters of every layer. No ReLU or pool here: a finite difference step across one of their
// kinks somewhere in the model would make the numeric gradient wrong (the layer tests cover them
// with inputs kept away from kinks, and the test above compares them with the reference).
TEST(Model, OnednnModelGradientMatchesFiniteDifferences) {
  OnednnBackend backend;
  Model model(parse_model_spec("conv3x3:4,conv3x3:6:s2,fc:8,fc:3", {2, 8, 8}), backend, 5);
  std::mt19937 rng(2);
  const std::vector<float> input = uniform_values(4 * 128, rng);
  const std::vector<int32_t> labels{0, 2, 1, 2};
  model_loss(model, input, labels, true);
  const std::vector<float> analytic(model.parameters().gradients().begin(), model.parameters().gradients().end());
  auto values = model.parameters().values();
  for (const ParameterRange& range : model.parameters().backward_order())
    for (size_t k = 0; k < range.count; k += std::max<size_t>(1, range.count / 12)) {
      float& value = values[range.offset + k];
      const float saved = value;
      value = saved + 1e-2f;
      const double plus = model_loss(model, input, labels, false);
      value = saved - 1e-2f;
      const double minus = model_loss(model, input, labels, false);
      value = saved;
      EXPECT_NEAR(analytic[range.offset + k], (plus - minus) / 2e-2, 5e-4) << "layer " << range.layer << " k " << k;
    }
}

TEST(Parameters, InitialValuesAreBoundedDeterministicAndSeeded) {
  OnednnBackend backend;
  const ModelPlan plan = plan_model("lenet5", {1, 28, 28});
  Model a(plan.layers, backend, 1), b(plan.layers, backend, 1), c(plan.layers, backend, 2);
  EXPECT_TRUE(std::equal(a.parameters().values().begin(), a.parameters().values().end(),
                         b.parameters().values().begin()));
  EXPECT_FALSE(std::equal(a.parameters().values().begin(), a.parameters().values().end(),
                          c.parameters().values().begin()));
  for (size_t i = 0; i < a.size(); ++i) {
    const double bound = a.layer(i).parameter_count() ? 1.0 / std::sqrt(double(plan.layers[i].fan_in())) : 0;
    for (float value : a.layer(i).weights()) ASSERT_LE(std::fabs(value), bound) << i;
  }
  EXPECT_EQ(plan.layers[6].fan_in(), 400u);  // fc:120 reads 16x5x5
}

}  // namespace
}  // namespace cclab::train
