// Measuring the cost model's parameters on the running job (the model itself: cclab/cost_model.h).
#pragma once

#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "cclab/comm.h"
#include "cclab/cost_model.h"
#include "p2p_bench.h"

namespace cclab {

struct CalibrationOptions {
  size_t max_bytes = size_t{4} << 20;         // largest ping-pong of the cached fit
  size_t streaming_bytes = size_t{64} << 20;  // arrays this large measure the streaming regime
  size_t concurrent_bytes = size_t{1} << 20;  // large cached messages are timed in both directions
  int iters = 30;
  int warmup = 5;
  double timeout_s = 60;
};

/// Collective: ping-pong latency sweeps between rank 0 and its first same-node peer (intra) and
/// its first other-node peer (inter; the intra fit stands in when there is one node), fitted to
/// alpha + beta*bytes (cached regime). Simultaneous exchanges each way (collectives send and
/// receive at once) from `concurrent_bytes` (the large-message beta) to `streaming_bytes` (the
/// streaming beta) by steps of sqrt 2 give the streaming curve between. Gamma and copy from timing
/// the kernels alone on small buffers and on every rank at once on large ones; the reduction on
/// every rank at once over arrays growing by sqrt 2 gives the kernels' own curve (the streaming
/// figures: each the median of three passes over time); the sharing costs
/// from two ranks of a node reducing into blocks they then exchange; the host ports from every rank
/// of rank 0's node exchanging with a rank of another node at once (ports: 1; a host with a NIC per
/// rail can say so in the file). Every rank returns rank 0's profile.
CostProfile calibrate_cost_profile(Comm& comm, const CalibrationOptions& options);

/// Keeps the cached regime's sharing costs current through a sweep. A VM's cores move between dies
/// while a job runs, and writing or reading what another core of the node holds costs several
/// times more across dies, so a sweep measures them again before each size (a few milliseconds).
/// One reading can catch a moment that does not last, so the profile takes the median of the last
/// three readings, starting from two of the calibration's: a move that lasts is followed from the
/// second size on, a single odd reading is not.
class SharingCostTracker {
 public:
  explicit SharingCostTracker(const CostProfile& calibrated);
  /// Collective: measures once more and sets `profile`'s cached sharing costs to the median.
  void refresh(Comm& comm, CostProfile& profile, double timeout_s);
  /// What refresh() does with rank 0's reading.
  void add_reading(double shared_write_us_per_byte, double dirty_read_us_per_byte, CostProfile& profile);

 private:
  std::vector<std::pair<double, double>> readings_;  // (shared write, dirty read) us per byte
};

/// The streaming curve from the calibration's simultaneous exchanges between rank 0 and `peer`
/// (rank 0's points; `same_node`: both ranks' traffic lands on one node).
StreamingCurve measure_streaming_curve(const std::vector<P2pPoint>& exchanges, int peer, bool same_node);

}  // namespace cclab
