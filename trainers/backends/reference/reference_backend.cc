#include "backends/reference/reference_backend.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "cclab/error.h"

namespace cclab::train {
namespace {

// Writes or adds a parameter gradient element.
inline void store(float& target, double value, bool accumulate) {
  target = accumulate ? target + static_cast<float>(value) : static_cast<float>(value);
}

class ReferenceConvolution final : public Layer {
 public:
  using Layer::Layer;

  void forward(const ForwardArgs& args) override {
    const Geometry g = geometry();
    for (size_t n = 0; n < args.batch; ++n)
      for (size_t o = 0; o < g.out_channels; ++o)
        for (size_t y = 0; y < g.out_height; ++y)
          for (size_t x = 0; x < g.out_width; ++x) {
            double sum = config().bias ? bias()[o] : 0.0;
            for_each_tap(g, y, x, [&](size_t i, size_t ky, size_t kx, size_t iy, size_t ix) {
              sum += double(weight(g, o, i, ky, kx)) * args.input[input_index(g, n, i, iy, ix)];
            });
            args.output[output_index(g, n, o, y, x)] = static_cast<float>(sum);
          }
  }

  void backward(const BackwardArgs& args) override {
    const Geometry g = geometry();
    if (args.input_grad) {
      std::vector<double> input_grad(args.batch * config().input.elements(), 0.0);
      for (size_t n = 0; n < args.batch; ++n)
        for (size_t o = 0; o < g.out_channels; ++o)
          for (size_t y = 0; y < g.out_height; ++y)
            for (size_t x = 0; x < g.out_width; ++x) {
              const double grad = args.output_grad[output_index(g, n, o, y, x)];
              for_each_tap(g, y, x, [&](size_t i, size_t ky, size_t kx, size_t iy, size_t ix) {
                input_grad[input_index(g, n, i, iy, ix)] += grad * weight(g, o, i, ky, kx);
              });
            }
      std::copy(input_grad.begin(), input_grad.end(), args.input_grad);
    }
    std::vector<double> weight_grad(config().weight_count(), 0.0), bias_grad(config().bias_count(), 0.0);
    for (size_t n = 0; n < args.batch; ++n)
      for (size_t o = 0; o < g.out_channels; ++o)
        for (size_t y = 0; y < g.out_height; ++y)
          for (size_t x = 0; x < g.out_width; ++x) {
            const double grad = args.output_grad[output_index(g, n, o, y, x)];
            if (config().bias) bias_grad[o] += grad;
            for_each_tap(g, y, x, [&](size_t i, size_t ky, size_t kx, size_t iy, size_t ix) {
              weight_grad[((o * g.in_channels + i) * g.kernel + ky) * g.kernel + kx] +=
                  grad * args.input[input_index(g, n, i, iy, ix)];
            });
          }
    for (size_t k = 0; k < weight_grad.size(); ++k) store(weight_grads()[k], weight_grad[k], args.accumulate);
    for (size_t k = 0; k < bias_grad.size(); ++k) store(bias_grads()[k], bias_grad[k], args.accumulate);
  }

 private:
  struct Geometry {
    size_t in_channels, in_height, in_width, out_channels, out_height, out_width, kernel, stride, padding;
  };
  Geometry geometry() const {
    const ActivationShape in = config().input, out = output_shape();
    return {in.channels, in.height, in.width, out.channels, out.height, out.width,
            config().kernel, config().stride, config().padding};
  }
  // NHWC
  static size_t input_index(const Geometry& g, size_t n, size_t c, size_t y, size_t x) {
    return ((n * g.in_height + y) * g.in_width + x) * g.in_channels + c;
  }
  static size_t output_index(const Geometry& g, size_t n, size_t c, size_t y, size_t x) {
    return ((n * g.out_height + y) * g.out_width + x) * g.out_channels + c;
  }
  float weight(const Geometry& g, size_t o, size_t i, size_t ky, size_t kx) const {
    return weights()[((o * g.in_channels + i) * g.kernel + ky) * g.kernel + kx];
  }
  // Calls f(input channel, ky, kx, input y, input x) for every tap of output (y, x) inside the input.
  template <typename F>
  static void for_each_tap(const Geometry& g, size_t y, size_t x, F&& f) {
    for (size_t i = 0; i < g.in_channels; ++i)
      for (size_t ky = 0; ky < g.kernel; ++ky)
        for (size_t kx = 0; kx < g.kernel; ++kx) {
          const long iy = long(y * g.stride + ky) - long(g.padding), ix = long(x * g.stride + kx) - long(g.padding);
          if (iy < 0 || ix < 0 || iy >= long(g.in_height) || ix >= long(g.in_width)) continue;
          f(i, ky, kx, size_t(iy), size_t(ix));
        }
  }
};

class ReferenceMaxPool final : public Layer {
 public:
  using Layer::Layer;

  void forward(const ForwardArgs& args) override {
    for_each_window(args.batch, args.input, [&](size_t out, size_t argmax) { args.output[out] = args.input[argmax]; });
  }

  // Recomputes the argmax from the input (no workspace), routing each output gradient to it.
  void backward(const BackwardArgs& args) override {
    if (!args.input_grad) return;
    std::fill(args.input_grad, args.input_grad + args.batch * config().input.elements(), 0.0f);
    for_each_window(args.batch, args.input,
                    [&](size_t out, size_t argmax) { args.input_grad[argmax] += args.output_grad[out]; });
  }

 private:
  // f(output index, input index of the window's first maximum); padding never wins.
  template <typename F>
  void for_each_window(size_t batch, const float* input, F&& f) const {
    const ActivationShape in = config().input, out = output_shape();
    const size_t k = config().kernel, s = config().stride, p = config().padding;
    for (size_t n = 0; n < batch; ++n)
      for (size_t c = 0; c < in.channels; ++c)
        for (size_t y = 0; y < out.height; ++y)
          for (size_t x = 0; x < out.width; ++x) {
            size_t argmax = 0;
            float best = -std::numeric_limits<float>::infinity();
            for (size_t ky = 0; ky < k; ++ky)
              for (size_t kx = 0; kx < k; ++kx) {
                const long iy = long(y * s + ky) - long(p), ix = long(x * s + kx) - long(p);
                if (iy < 0 || ix < 0 || iy >= long(in.height) || ix >= long(in.width)) continue;
                const size_t at = ((n * in.height + size_t(iy)) * in.width + size_t(ix)) * in.channels + c;
                if (input[at] > best) best = input[at], argmax = at;
              }
            f(((n * out.height + y) * out.width + x) * out.channels + c, argmax);
          }
  }
};

class ReferenceRelu final : public Layer {
 public:
  using Layer::Layer;
  void forward(const ForwardArgs& args) override {
    for (size_t i = 0; i < args.batch * config().input.elements(); ++i) args.output[i] = std::max(args.input[i], 0.0f);
  }
  void backward(const BackwardArgs& args) override {
    if (!args.input_grad) return;
    for (size_t i = 0; i < args.batch * config().input.elements(); ++i)
      args.input_grad[i] = args.input[i] > 0 ? args.output_grad[i] : 0.0f;
  }
};

class ReferenceFullyConnected final : public Layer {
 public:
  using Layer::Layer;

  void forward(const ForwardArgs& args) override {
    const size_t in = config().input.elements(), out = config().outputs.count;
    for (size_t n = 0; n < args.batch; ++n)
      for (size_t o = 0; o < out; ++o) {
        double sum = config().bias ? bias()[o] : 0.0;
        for (size_t i = 0; i < in; ++i) sum += double(weights()[o * in + i]) * args.input[n * in + i];
        args.output[n * out + o] = static_cast<float>(sum);
      }
  }

  void backward(const BackwardArgs& args) override {
    const size_t in = config().input.elements(), out = config().outputs.count;
    if (args.input_grad)
      for (size_t n = 0; n < args.batch; ++n)
        for (size_t i = 0; i < in; ++i) {
          double sum = 0;
          for (size_t o = 0; o < out; ++o) sum += double(args.output_grad[n * out + o]) * weights()[o * in + i];
          args.input_grad[n * in + i] = static_cast<float>(sum);
        }
    for (size_t o = 0; o < out; ++o) {
      for (size_t i = 0; i < in; ++i) {
        double sum = 0;
        for (size_t n = 0; n < args.batch; ++n) sum += double(args.output_grad[n * out + o]) * args.input[n * in + i];
        store(weight_grads()[o * in + i], sum, args.accumulate);
      }
      if (config().bias) {
        double sum = 0;
        for (size_t n = 0; n < args.batch; ++n) sum += args.output_grad[n * out + o];
        store(bias_grads()[o], sum, args.accumulate);
      }
    }
  }
};

}  // namespace

std::unique_ptr<Layer> ReferenceBackend::make_layer(const LayerConfig& config) {
  switch (config.kind) {
    case LayerKind::convolution:
      return std::make_unique<ReferenceConvolution>(config);
    case LayerKind::max_pool:
      return std::make_unique<ReferenceMaxPool>(config);
    case LayerKind::relu:
      return std::make_unique<ReferenceRelu>(config);
    case LayerKind::fully_connected:
      return std::make_unique<ReferenceFullyConnected>(config);
  }
  throw Error("unknown layer kind");
}

}  // namespace cclab::train
