// Where a training run's tensors live, and who runs the element-wise steps around the layers (the
// loss and the SGD update). The host is the default. `train --device cuda` installs the CUDA device
// (backends/cuda/) before any model is built: every FloatBuffer and ByteBuffer of the run then
// comes from memory that both the host and the GPU address (CUDA managed memory), so the modes'
// host code (data loading, collectives, checkpoints) runs unchanged on the GPU's tensors, and the
// GPU's layers, loss and update never see memory they cannot reach.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "model/loss.h"

namespace cclab::train {

class ComputeDevice {
 public:
  virtual ~ComputeDevice() = default;
  /// "host", or the GPU's name.
  virtual std::string name() const = 0;
  /// Memory for the run's buffers, aligned to 64 bytes, addressable by the host and this device.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* pointer) = 0;
  /// softmax_cross_entropy (loss.h) on this device, or nothing where the host loop should run (the
  /// host device, or memory this device cannot read).
  virtual std::optional<LossResult> softmax_cross_entropy(const float* /*scores*/, const int32_t* /*labels*/,
                                                          size_t /*batch*/, size_t /*classes*/, float* /*scores_grad*/,
                                                          double /*normaliser*/) {
    return std::nullopt;
  }
  /// SgdMomentum's update (velocity = momentum * velocity + gradient; value -= rate * velocity) on
  /// this device; false where the host loop should run.
  virtual bool sgd_momentum(std::span<float> /*values*/, std::span<const float> /*gradients*/,
                            std::span<float> /*velocity*/, float /*learning_rate*/, float /*momentum*/) {
    return false;
  }
};

/// The device of this process's run (the host unless use_compute_device was called).
ComputeDevice& compute_device();
/// Makes `device` (the host when null) the process's device from now on. Every device installed is
/// kept until the process ends, so a buffer allocated before a switch still goes back to the device
/// it came from. Switch between runs, not while a run's threads allocate.
void use_compute_device(std::shared_ptr<ComputeDevice> device);

/// Buffer memory from the current device (buffer.h's allocator).
void* allocate_buffer(size_t bytes);
void release_buffer(void* pointer);
/// Bytes of buffers this thread allocated and has not released: what a rank's thread holds between
/// two moments is the difference of two readings.
int64_t thread_buffer_bytes();

}  // namespace cclab::train
