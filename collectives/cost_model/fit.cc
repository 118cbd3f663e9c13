#include "cclab/cost_model.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "cclab/error.h"
#include "transports/shared_memory/mailbox_transport.h"

namespace cclab {

namespace {

struct LineFit {
  double alpha = 0, beta = 0, error = 0;  // error: sum of squared relative residuals
  bool valid = false;
};

// Minimise sum(((alpha + beta*s - t) / t)^2) over points [first, last): a 2x2 weighted system.
LineFit fit_line(const std::vector<double>& bytes, const std::vector<double>& times, size_t first, size_t last) {
  double s00 = 0, s01 = 0, s11 = 0, r0 = 0, r1 = 0;
  for (size_t i = first; i < last; ++i) {
    const double w = 1 / (times[i] * times[i]);
    s00 += w;
    s01 += w * bytes[i];
    s11 += w * bytes[i] * bytes[i];
    r0 += w * times[i];
    r1 += w * bytes[i] * times[i];
  }
  const double det = s00 * s11 - s01 * s01;
  LineFit fit;
  if (last - first < 2 || det <= 0) return fit;
  fit.alpha = std::max(0.0, (r0 * s11 - r1 * s01) / det);
  fit.beta = std::max(0.0, (s00 * r1 - s01 * r0) / det);
  for (size_t i = first; i < last; ++i) {
    const double residual = (fit.alpha + fit.beta * bytes[i] - times[i]) / times[i];
    fit.error += residual * residual;
  }
  fit.valid = true;
  return fit;
}

}  // namespace

LinkCost fit_link_cost(const std::vector<double>& bytes_in, const std::vector<double>& times_in,
                       size_t own_path_bytes) {
  std::vector<std::pair<double, double>> points;
  for (size_t i = 0; i < bytes_in.size() && i < times_in.size(); ++i)
    if (times_in[i] > 0) points.emplace_back(bytes_in[i], times_in[i]);
  std::sort(points.begin(), points.end());
  std::vector<double> bytes, times;
  for (const auto& [size, time] : points) bytes.push_back(size), times.push_back(time);

  const LineFit one = fit_line(bytes, times, 0, bytes.size());
  if (!one.valid) throw Error("cost model: need measurements at two or more sizes to fit alpha and beta");
  // A transport's own path for small messages is the break, with a line each side of it.
  const size_t own = size_t(std::upper_bound(bytes.begin(), bytes.end(), double(own_path_bytes)) - bytes.begin());
  if (own >= 2 && own + 2 <= bytes.size()) {
    const LineFit small = fit_line(bytes, times, 0, own), large = fit_line(bytes, times, own, bytes.size());
    return {small.alpha, small.beta, own_path_bytes, large.alpha, large.beta};
  }
  LinkCost cost{one.alpha, one.beta};
  // Otherwise a break must earn its two extra parameters: it has to cut the error at least in half.
  double best_error = one.error * 0.5;
  for (size_t split = 3; split + 3 <= bytes.size(); ++split) {  // three points a side at least
    const LineFit small = fit_line(bytes, times, 0, split), large = fit_line(bytes, times, split, bytes.size());
    if (!small.valid || !large.valid || small.error + large.error >= best_error) continue;
    best_error = small.error + large.error;
    cost = {small.alpha, small.beta, size_t(bytes[split - 1]), large.alpha, large.beta};
  }
  return cost;
}

size_t own_path_bytes(const Transport& transport) {
  // Only the mailboxes give small messages a path of their own; the Transport interface stays I/O.
  return dynamic_cast<const MailboxTransport*>(&transport) ? MailboxTransport::kMostBytes : 0;
}

// A streaming curve from per-byte times at growing footprints: each point's fraction is how far its
// time has moved from the smallest footprint's (cached) to the largest one's (streaming). The curve
// is the closest monotone one to the measured fractions (least squares: adjacent points that fall
// are pooled into their mean), so one slow measurement early in the sweep (the VM's cores moved)
// lifts its neighbours a little rather than every larger footprint to its level, as a running
// maximum would.
StreamingCurve monotone_streaming_curve(std::vector<std::pair<size_t, double>> per_byte_by_footprint) {
  std::sort(per_byte_by_footprint.begin(), per_byte_by_footprint.end());
  StreamingCurve curve;
  if (per_byte_by_footprint.empty()) return curve;
  const double cached = per_byte_by_footprint.front().second, streaming = per_byte_by_footprint.back().second;
  struct Pool {
    double sum;
    size_t points;
    double mean() const { return sum / double(points); }
  };
  std::vector<Pool> pools;
  for (const auto& [footprint, per_byte] : per_byte_by_footprint) {
    const bool last = footprint == per_byte_by_footprint.back().first;
    const double measured = streaming > cached ? (per_byte - cached) / (streaming - cached) : (last ? 1.0 : 0.0);
    pools.push_back({std::clamp(measured, 0.0, 1.0), 1});
    while (pools.size() > 1 && pools[pools.size() - 2].mean() > pools.back().mean()) {
      pools[pools.size() - 2].sum += pools.back().sum;
      pools[pools.size() - 2].points += pools.back().points;
      pools.pop_back();
    }
  }
  size_t next = 0;
  for (const Pool& pool : pools)
    for (size_t i = 0; i < pool.points; ++i, ++next)
      curve.points.emplace_back(per_byte_by_footprint[next].first, pool.mean());
  return curve;
}

}  // namespace cclab
