// The alpha-beta-gamma cost model (DESIGN 3.3): a message of b bytes takes alpha + beta*b on its
// link (intra- or inter-node), a reduction of b bytes takes gamma*b of its rank's core. The
// time simulation runs every rank's Schedule against these costs; `auto` selection and the
// `pred_us` column use it. Sources in collectives/cost_model/: the profile and its file
// (profile.cc), the prediction (prediction.cc), the fits to measurements (fit.cc); the bench
// runs the measurements (bench/calibration.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/wire.h"

namespace cclab {

class Transport;

/// A link's cost per message. Transports switch protocol with the message size (cclab's
/// mailboxes up to 512 bytes within a node, UCX above; without mailboxes UCX eager below its
/// rendezvous threshold, rendezvous above), so the line may break once at `protocol_bytes`:
/// messages above it cost large_alpha + large_beta*b.
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
  /// The per-message part of time_us(bytes): what a message of that size pays besides its bytes.
  double latency_us(double bytes) const { return bytes <= double(protocol_bytes) ? alpha_us : large_alpha_us; }
  /// The inverse bandwidth of the largest messages.
  double large_message_beta() const {
    return protocol_bytes == SIZE_MAX ? beta_us_per_byte : large_beta_us_per_byte;
  }
};

/// The network ports of a host (its NICs), which every transfer between its ranks and another
/// node's shares: a flow between two hosts is as fast as inter_node says, but all the flows that
/// leave (or reach) a host at once go through its ports. Each direction is apart (full duplex).
/// `us_per_byte` is what all the host's ports move together, each port carrying its 1/ports share;
/// a rank uses port (index on its node) % ports, as ranks are bound to the NIC nearest them, so a
/// rail of hier_rail has a port of its own only where the host has a NIC per rail.
struct HostPorts {
  int ports = 1;
  double us_per_byte = 0;  // 0: no limit beyond each flow's own
  double port_us_per_byte() const { return us_per_byte * double(ports); }
};

/// Per-byte costs of one memory regime.
struct RegimeCost {
  LinkCost intra_node;
  LinkCost inter_node;
  double gamma_us_per_byte = 0;  // reduce kernel, per byte of result
  double copy_us_per_byte = 0;   // memcpy, per byte
  // Extra per byte of writing memory that a peer on this node has read since: each cache line's
  // copy in the peer's cache must be invalidated first, a core-to-core round trip (longer across
  // dies than within one). Repeated calls pay it wherever a rank writes a region it sends to a
  // same-node peer (the ring's reduced blocks, a forwarded chunk).
  double shared_write_us_per_byte = 0;
  // Extra per byte of a same-node transfer of data the sender wrote in the call: the receiving
  // core pulls lines that are dirty in the sender's cache, again a core-to-core trip each.
  double dirty_read_us_per_byte = 0;
};

/// How much of a call streams from memory, against its footprint F on its busiest node (the
/// inputs, outputs and scratch of all the node's ranks). Measured, not read from the cache size
/// the machine reports: a VM's share of a shared last-level cache is smaller than what sysfs says,
/// and caches do not empty at once. Points are (footprint bytes, streaming fraction 0..1), sorted by
/// footprint, fractions nondecreasing; between points the fraction moves linearly in log2(F); below
/// the first point it is the first point's, above the last the last's.
struct StreamingCurve {
  std::vector<std::pair<size_t, double>> points;
  double fraction(size_t node_footprint_bytes) const;
  /// The curve of footprints of at least `bytes`: fraction(max(F, bytes)) for every F.
  StreamingCurve at_least(size_t bytes) const;
};

/// Two regimes: calls whose memory stays in the caches, and calls whose transfers and reductions
/// stream from memory, with every rank of the node competing for it; a call between the two pays
/// a share of the way from the cached costs to the streaming ones: transfers and sharing costs
/// `streaming_curve.fraction(F)`, reductions and copies `kernel_streaming_curve.fraction(F)`. The
/// two turn at different footprints (reductions stream from smaller ones than exchanges), so one
/// curve for both mispredicts the sizes between (docs/measurements.md).
struct CostProfile {
  std::string transport = "ucx";
  Wire wire;  // what carried the bytes it was fitted on (empty in profiles older than the field)
  RegimeCost cached;
  RegimeCost streaming;
  StreamingCurve streaming_curve{{{size_t{16} << 20, 0.0}, {size_t{32} << 20, 1.0}}};
  StreamingCurve kernel_streaming_curve{{{size_t{16} << 20, 0.0}, {size_t{32} << 20, 1.0}}};
  HostPorts host_ports;
  RegimeCost regime(size_t node_footprint_bytes) const;
  /// The profile for calls made among other data that the node's ranks keep touching between them
  /// (a training step's parameters, gradients and activations): every call's footprint counts as at
  /// least `working_set_bytes`, since the caches hold the call's data only as far as they hold that.
  CostProfile within_working_set(size_t working_set_bytes) const;
};

/// Bytes the ranks of the busiest node touch in one call: input, output (once when in place) and
/// the scratch its steps touch, from the schedules.
size_t node_footprint_bytes(const Topology& topology, const CollectiveArgs& args,
                            const std::vector<Schedule>& schedules);

/// Predicted time of one call: the latest finish over ranks, in microseconds.
///
/// Each rank has one core (reductions and copies run one at a time), one send port and one
/// receive port: a transfer starts once both sides have posted it and both ports are free, and
/// occupies them for alpha + beta*bytes; within a node it also occupies the receiver's core (the
/// receiving process copies shared-memory data itself). Between nodes its bytes also pass through
/// a port of each host (profile.host_ports), in the order the transfers start: it ends no sooner
/// than alpha after its bytes have left the busier of the two, while the ranks' own ports are free
/// again after alpha + beta*bytes (the bytes wait in the network stack, not in the ranks). Steps
/// start as soon as their dependencies finish. A reduction, copy or receive into a region the rank
/// also sends to a same-node peer pays shared_write_us_per_byte on those bytes (the calls repeat, so
/// the peer read them last time); a same-node transfer of a region its sender wrote pays
/// dirty_read_us_per_byte on those bytes.
double predict_time_us(const Topology& topology, const CollectiveArgs& args, const std::vector<Schedule>& schedules,
                       const CostProfile& profile);

/// Builds every rank's schedule with `algorithm` and predicts its time.
double predict_time_us(const Algorithm& algorithm, const Topology& topology, const CollectiveArgs& args,
                       const CostProfile& profile);

/// Weighted least squares of time = alpha + beta*bytes over measured points, minimising the
/// relative error (so 8-byte latencies weigh as much as megabyte transfers). Where one line fits
/// clearly worse than two (a protocol switch), the line breaks at the best split of the sizes.
/// When a transport gives messages of up to `own_path_bytes` a path of their own
/// (own_path_bytes(transport)), the break is there: one line each side of it.
LinkCost fit_link_cost(const std::vector<double>& bytes, const std::vector<double>& times_us,
                       size_t own_path_bytes = 0);

/// A streaming curve from (node footprint, per-byte time) measurements: each footprint's fraction of
/// the way from the smallest footprint's time to the largest one's, made monotone by pooling.
StreamingCurve monotone_streaming_curve(std::vector<std::pair<size_t, double>> per_byte_by_footprint);

/// Messages of up to this many bytes take a path of their own on `transport` (a MailboxTransport:
/// the node's mailboxes); 0: none. The cost model fits their latency apart from the larger ones'.
size_t own_path_bytes(const Transport& transport);

/// A profile as a JSON document (schema cclab.profile/5), and back.
std::string profile_to_json(const CostProfile& profile);
CostProfile profile_from_json(const std::string& text);
void save_profile(const std::string& path, const CostProfile& profile);
/// UsageError naming the file when it is missing or not a profile.
CostProfile load_profile(const std::string& path);
/// One short line of the cached regime's figures: "intra-node alpha 0.30 us, 1.12 GB/s (over 512 B:
/// 3.14 us, 9.84 GB/s); inter-node ...; reduce 26.16 GB/s (ucx+shm)".
std::string describe_profile(const CostProfile& profile);
/// Every figure of the profile, both regimes and the streaming curves, on one line.
std::string describe_profile_in_full(const CostProfile& profile);

}  // namespace cclab
