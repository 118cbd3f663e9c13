// The model spec grammar and the built-in models (trainers/model/spec.h).
#include <gtest/gtest.h>

#include "cclab/error.h"
#include "model/spec.h"

namespace cclab::train {
namespace {

TEST(ModelSpec, Lenet5HasTheClassicShapesAndParameterCount) {
  const ModelPlan plan = plan_model("lenet5", {1, 28, 28});
  EXPECT_EQ(plan.name, "lenet5");
  ASSERT_EQ(plan.layers.size(), 11u);
  EXPECT_EQ(plan.layers[0].output(), (ActivationShape{6, 28, 28}));  // padding 2 keeps 28x28
  EXPECT_EQ(plan.layers[2].output(), (ActivationShape{6, 14, 14}));
  EXPECT_EQ(plan.layers[3].output(), (ActivationShape{16, 10, 10}));
  EXPECT_EQ(plan.layers[5].output(), (ActivationShape{16, 5, 5}));
  EXPECT_EQ(plan.layers[6].input.elements(), 400u);
  EXPECT_EQ(plan.output(), (ActivationShape{10, 1, 1}));
  // 6*25+6 + 16*6*25+16 + 400*120+120 + 120*84+84 + 84*10+10
  EXPECT_EQ(plan.parameter_count(), 61706u);
}

TEST(ModelSpec, ConvnetHas3274634Parameters) {
  const ModelPlan plan = plan_model("convnet", {1, 28, 28});
  EXPECT_EQ(plan.layers[5].output(), (ActivationShape{64, 7, 7}));
  // 32*25+32 + 64*32*25+64 + 7*7*64*1024+1024 + 1024*10+10
  EXPECT_EQ(plan.parameter_count(), 3274634u);
}

TEST(ModelSpec, ParsesEveryItemForm) {
  const auto layers = parse_model_spec(" conv3x3:8:s2:p0 , relu,maxpool3:s1:p1,conv4x4:4,pool2,fc:7", {3, 17, 17});
  ASSERT_EQ(layers.size(), 6u);
  EXPECT_EQ(layers[0].kind, LayerKind::convolution);
  EXPECT_EQ(layers[0].kernel, 3u);
  EXPECT_EQ(layers[0].stride, 2u);
  EXPECT_EQ(layers[0].padding, 0u);
  EXPECT_EQ(layers[0].output(), (ActivationShape{8, 8, 8}));
  EXPECT_EQ(layers[1].kind, LayerKind::relu);
  EXPECT_EQ(layers[2].kind, LayerKind::max_pool);
  EXPECT_EQ(layers[2].stride, 1u);
  EXPECT_EQ(layers[2].output(), (ActivationShape{8, 8, 8}));
  EXPECT_EQ(layers[3].padding, 0u);  // even kernel: no 'same' default
  EXPECT_EQ(layers[3].output(), (ActivationShape{4, 5, 5}));
  EXPECT_EQ(layers[4].output(), (ActivationShape{4, 2, 2}));
  EXPECT_EQ(layers[5].inputs.total, 4u);
  EXPECT_EQ(layers[5].weight_count(), 7u * 16u);
  for (size_t i = 0; i < layers.size(); ++i) EXPECT_EQ(layers[i].index, i);
  // Names print back in the grammar and parse to the same layers.
  std::string printed;
  for (const LayerConfig& layer : layers) {
    if (!printed.empty()) printed += ',';
    printed += layer.name();
  }
  EXPECT_EQ(printed, "conv3x3:8:s2:p0,relu,pool3:s1:p1,conv4x4:4:p0,pool2,fc:7");
  const auto reparsed = parse_model_spec(printed, {3, 17, 17});
  for (size_t i = 0; i < layers.size(); ++i) EXPECT_EQ(reparsed[i].output(), layers[i].output());
}

TEST(ModelSpec, SameAndValidPadding) {
  EXPECT_EQ(parse_model_spec("conv5x5:2:valid,fc:2", {1, 9, 9})[0].output(), (ActivationShape{2, 5, 5}));
  EXPECT_EQ(parse_model_spec("conv5x5:2:same,fc:2", {1, 9, 9})[0].output(), (ActivationShape{2, 9, 9}));
}

void expect_usage_error(const std::string& spec, const std::string& fragment, ActivationShape input = {1, 28, 28}) {
  try {
    plan_model(spec, input);
    ADD_FAILURE() << "'" << spec << "' was accepted";
  } catch (const UsageError& error) {
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos)
        << "'" << spec << "': " << error.what() << " (expected to contain '" << fragment << "')";
  }
}

TEST(ModelSpec, BadSpecsAreUsageErrorsNamingTheItem) {
  expect_usage_error("", "empty model spec");
  expect_usage_error("resnet50", "unknown model 'resnet50'");
  expect_usage_error("conv5:32,fc:10", "item 1 'conv5:32': expected convKxK:C");
  expect_usage_error("conv5x3:32,fc:10", "only square kernels");
  expect_usage_error("conv5x5,fc:10", "missing output channels");
  expect_usage_error("conv5x5:0,fc:10", "bad output channels '0'");
  expect_usage_error("conv5x5:32:q3,fc:10", "unknown option 'q3'");
  expect_usage_error("conv5x5:32:s0,fc:10", "bad stride 's0'");
  expect_usage_error("conv5x5:32:p5,fc:10", "padding 5 is not smaller than the kernel");
  expect_usage_error("conv4x4:32:same,fc:10", "'same' padding needs an odd kernel");
  expect_usage_error("conv3x3:4:p1:valid,fc:10", "padding given twice");
  expect_usage_error("relu,fc:x", "item 2 'fc:x': bad output count");
  expect_usage_error("fc", "item 1 'fc': expected fc:N");
  expect_usage_error("relu:1,fc:10", "relu takes no options");
  expect_usage_error("softmax,fc:10", "item 1 'softmax': unknown layer");
  expect_usage_error("relu,,fc:10", "item 2 '': empty item");
  expect_usage_error("fc:10,", "item 2 '': empty item");
  expect_usage_error("fc:10,conv3x3:4,fc:10", "follows an fc layer");
  expect_usage_error("pool2,pool2,pool2,pool2,pool2,fc:10", "item 5 'pool2': its 2x2 window does not fit its 1x1x1");
  expect_usage_error("conv3x3:4,relu", "the last layer must be fc:N");
  expect_usage_error("fc:99999999999", "bad output count");
  expect_usage_error("conv3x3:4,fc:10", "", {0, 28, 28});
}

}  // namespace
}  // namespace cclab::train
