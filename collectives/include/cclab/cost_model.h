// The alpha-beta-gamma cost model (DESIGN 3.3): a message of b bytes takes alpha + beta*b on its
// link (intra- or inter-node), a reduction of b bytes takes gamma*b of its rank's core. The
// time simulation runs every rank's Schedule against these costs; `auto` selection and the
// `pred_us` column use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cclab/algorithm.h"

namespace cclab {

/// A link's cost per message. Transports switch protocol with the message size (UCX: eager
/// below its rendezvous threshold, rendezvous above), so the line may break once at
/// `protocol_bytes`: messages above it cost large_alpha + large_beta*b.
struct LinkCost {
  double alpha_us = 0;          // per message
  double beta_us_per_byte = 0;  // inverse bandwidth
  size_t protocol_bytes = SIZE_MAX;
  double large_alpha_us = 0;
  double large_beta_us_per_byte = 0;
  double time_us(double bytes) const {
    return bytes <= double(protocol_bytes) ? alpha_us + beta_us_per_byte * bytes
                                           : large_alpha_us + large_beta_us_per_byte * bytes;
  }
};

/// Per-byte costs of one memory regime.
struct RegimeCost {
  LinkCost intra_node;
  LinkCost inter_node;
  double gamma_us_per_byte = 0;  // reduce kernel, per byte of result
  double copy_us_per_byte = 0;   // memcpy, per byte
};

/// Two regimes: calls whose memory stays in the caches, and calls whose transfers and reductions
/// stream from memory, with every rank of the node competing for it. What decides is the call's
/// footprint F on its busiest node (the inputs, outputs and scratch of all the node's ranks) against
/// C = `cache_bytes`, the node's shared last-level cache (read from the machine at calibration).
/// Caches do not empty at once: between C and 2C the costs move linearly from the cached to the
/// streaming ones (fraction (F - C) / C streams); above 2C they are the streaming ones.
struct CostProfile {
  std::string transport = "ucx";
  RegimeCost cached;
  RegimeCost streaming;
  size_t cache_bytes = size_t{16} << 20;
  RegimeCost regime(size_t node_footprint_bytes) const;
};

/// Bytes the ranks of the busiest node touch in one call: input, output (once when in place) and
/// scratch of each, from the schedules.
size_t node_footprint_bytes(const Topology& topology, const CollectiveArgs& args,
                            const std::vector<Schedule>& schedules);

/// Predicted time of one call: the latest finish over ranks, in microseconds.
///
/// Each rank has one core (reductions and copies run one at a time), one send port and one
/// receive port: a transfer starts once both sides have posted it and both ports are free, and
/// occupies them for alpha + beta*bytes; within a node it also occupies the receiver's core (the
/// receiving process copies shared-memory data itself). Steps start as soon as their dependencies
/// finish.
double predict_time_us(const Topology& topology, const CollectiveArgs& args, const std::vector<Schedule>& schedules,
                       const CostProfile& profile);

/// Builds every rank's schedule with `algorithm` and predicts its time.
double predict_time_us(const Algorithm& algorithm, const Topology& topology, const CollectiveArgs& args,
                       const CostProfile& profile);

/// Weighted least squares of time = alpha + beta*bytes over measured points, minimising the
/// relative error (so 8-byte latencies weigh as much as megabyte transfers). Where one line fits
/// clearly worse than two (a protocol switch), the line breaks at the best split of the sizes.
LinkCost fit_link_cost(const std::vector<double>& bytes, const std::vector<double>& times_us);

}  // namespace cclab
