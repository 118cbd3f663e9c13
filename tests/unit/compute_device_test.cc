// The compute device (model/compute_device.h) on the host: the run's buffers come from the device
// installed when they were allocated and go back to it, also after another is installed; the loss
// and the SGD update ask the device first and run on the host where it declines.
#include "model/compute_device.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "backends/reference/reference_backend.h"
#include "model/loss.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "model/spec.h"

namespace cclab::train {
namespace {

// Host memory, counted; declines the loss and the update but counts the requests.
class CountingDevice : public ComputeDevice {
 public:
  std::string name() const override { return "counting"; }
  void* allocate(size_t bytes) override {
    ++allocations;
    return ::operator new (bytes, std::align_val_t{64});
  }
  void release(void* pointer) override {
    ++releases;
    ::operator delete (pointer, std::align_val_t{64});
  }
  std::optional<LossResult> softmax_cross_entropy(const float*, const int32_t*, size_t, size_t, float*,
                                                  double) override {
    ++loss_requests;
    return std::nullopt;
  }
  bool sgd_momentum(std::span<float>, std::span<const float>, std::span<float>, float, float) override {
    ++update_requests;
    return false;
  }

  int allocations = 0, releases = 0, loss_requests = 0, update_requests = 0;
};

// One training step of lenet5 on a fixed batch; returns the loss.
double train_one_step(Model& model, SgdMomentum& optimizer) {
  const size_t batch = 4;
  Activations activations(model, batch);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> value(-1, 1);
  for (size_t i = 0; i < batch * model.input_shape().elements(); ++i) activations.input()[i] = value(rng);
  const std::vector<int32_t> labels{1, 7, 3, 0};
  model.forward(activations, batch, true);
  const LossResult loss =
      softmax_cross_entropy(activations.output(), labels.data(), batch, 10, activations.output_gradient(), batch);
  model.backward(activations, batch, {});
  optimizer.step(model.parameters());
  return loss.loss_sum;
}

TEST(ComputeDevice, BuffersComeFromTheInstalledDeviceAndGoBackToIt) {
  ReferenceBackend backend;
  const ModelPlan plan = plan_model("lenet5", {1, 28, 28});
  double host_loss = 0;
  std::vector<float> host_parameters;
  {
    Model model(plan.layers, backend, 7);
    SgdMomentum optimizer(model.parameters().size(), 0.05f, 0.9f);
    host_loss = train_one_step(model, optimizer);
    host_parameters.assign(model.parameters().values().begin(), model.parameters().values().end());
  }
  auto device = std::make_shared<CountingDevice>();
  use_compute_device(device);
  EXPECT_EQ(compute_device().name(), "counting");
  auto model = std::make_unique<Model>(plan.layers, backend, 7);
  auto optimizer = std::make_unique<SgdMomentum>(model->parameters().size(), 0.05f, 0.9f);
  const double loss = train_one_step(*model, *optimizer);
  // The host loops ran what the device declined: the same numbers as on the host device.
  EXPECT_EQ(loss, host_loss);
  EXPECT_TRUE(std::equal(host_parameters.begin(), host_parameters.end(), model->parameters().values().begin()));
  EXPECT_EQ(device->loss_requests, 1);
  EXPECT_EQ(device->update_requests, 1);
  EXPECT_GT(device->allocations, 0);
  // Installing the host again does not send the model's buffers to the host's release.
  use_compute_device(nullptr);
  EXPECT_EQ(compute_device().name(), "host");
  model.reset();
  optimizer.reset();
  EXPECT_EQ(device->releases, device->allocations);
  const int before = device->allocations;
  FloatBuffer on_host(100);
  EXPECT_EQ(device->allocations, before);
}

// What a thread holds is counted in bytes across allocations and releases, whatever the device;
// another thread's buffers do not count.
TEST(ComputeDevice, ThreadsCountTheBufferBytesTheyHold) {
  const int64_t before = thread_buffer_bytes();
  {
    FloatBuffer floats(1000);
    ByteBuffer bytes(24);
    EXPECT_EQ(thread_buffer_bytes() - before, int64_t(1000 * sizeof(float) + 24));
    std::thread([] {
      const int64_t theirs = thread_buffer_bytes();
      FloatBuffer elsewhere(500);
      EXPECT_EQ(thread_buffer_bytes() - theirs, int64_t(500 * sizeof(float)));
    }).join();
    EXPECT_EQ(thread_buffer_bytes() - before, int64_t(1000 * sizeof(float) + 24));
    floats = FloatBuffer(10);
    EXPECT_EQ(thread_buffer_bytes() - before, int64_t(10 * sizeof(float) + 24));
  }
  EXPECT_EQ(thread_buffer_bytes(), before);
}

}  // namespace
}  // namespace cclab::train
