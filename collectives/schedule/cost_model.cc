#include "cclab/cost_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "cclab/error.h"

namespace cclab {

namespace {

double mix(double cached, double streaming, double fraction) { return cached + fraction * (streaming - cached); }

LinkCost mix(const LinkCost& cached, const LinkCost& streaming, double fraction) {
  LinkCost link = cached;
  link.alpha_us = mix(cached.alpha_us, streaming.alpha_us, fraction);
  link.beta_us_per_byte = mix(cached.beta_us_per_byte, streaming.beta_us_per_byte, fraction);
  link.large_alpha_us = mix(cached.large_alpha_us, streaming.large_alpha_us, fraction);
  link.large_beta_us_per_byte = mix(cached.large_beta_us_per_byte, streaming.large_beta_us_per_byte, fraction);
  return link;
}

// A set of element ranges of one rank's buffers (merged per buffer), to tell how many elements of
// a region fall inside it. In place, input and output are one memory.
class RegionSet {
 public:
  explicit RegionSet(bool inplace) : inplace_(inplace) {}

  void add(const Region& region) {
    if (region.count > 0) ranges_[key(region.buffer)].emplace_back(region.offset, region.offset + region.count);
  }

  /// Call once after the last add().
  void merge() {
    for (auto& [buffer, ranges] : ranges_) {
      std::sort(ranges.begin(), ranges.end());
      std::vector<std::pair<size_t, size_t>> merged;
      for (const auto& range : ranges)
        if (!merged.empty() && range.first <= merged.back().second)
          merged.back().second = std::max(merged.back().second, range.second);
        else
          merged.push_back(range);
      ranges = std::move(merged);
    }
  }

  /// Elements of `buffer` in the set.
  size_t elements(BufferKind buffer) const {
    auto found = ranges_.find(key(buffer));
    size_t total = 0;
    if (found != ranges_.end())
      for (const auto& [begin, end] : found->second) total += end - begin;
    return total;
  }

  size_t overlap(const Region& region) const {
    auto found = ranges_.find(key(region.buffer));
    if (found == ranges_.end() || region.count == 0) return 0;
    const auto& ranges = found->second;
    const size_t begin = region.offset, end = region.offset + region.count;
    size_t inside = 0;
    auto it = std::upper_bound(ranges.begin(), ranges.end(), std::pair{begin, SIZE_MAX});
    if (it != ranges.begin()) --it;
    for (; it != ranges.end() && it->first < end; ++it)
      if (it->second > begin) inside += std::min(end, it->second) - std::max(begin, it->first);
    return inside;
  }

 private:
  BufferKind key(BufferKind buffer) const { return inplace_ && buffer == BufferKind::input ? BufferKind::output : buffer; }
  bool inplace_;
  std::map<BufferKind, std::vector<std::pair<size_t, size_t>>> ranges_;
};

// Where a rank's memory is shared with the other cores of its node: what it sends to same-node
// peers (their cores read it), and what it writes (a peer reading it reads lines dirty in this
// rank's cache).
struct SharedMemory {
  RegionSet read_by_node_peers, written;
  SharedMemory(const Schedule& schedule, const Topology& topology, size_t rank, bool inplace)
      : read_by_node_peers(inplace), written(inplace) {
    for (const Step& step : schedule.steps) {
      if (step.kind == StepKind::send && topology.node_of_rank.at(size_t(step.peer)) == topology.node_of_rank.at(rank))
        read_by_node_peers.add(step.source);
      if (step.kind != StepKind::send) written.add(step.target);
    }
    read_by_node_peers.merge();
    written.merge();
  }
};

}  // namespace

double StreamingCurve::fraction(size_t node_footprint_bytes) const {
  if (points.empty()) return 0;
  const double footprint = std::log2(double(std::max<size_t>(node_footprint_bytes, 1)));
  if (footprint <= std::log2(double(points.front().first))) return points.front().second;
  for (size_t i = 1; i < points.size(); ++i) {
    const double low = std::log2(double(points[i - 1].first)), high = std::log2(double(points[i].first));
    if (footprint <= high)
      return mix(points[i - 1].second, points[i].second, high > low ? (footprint - low) / (high - low) : 1.0);
  }
  return points.back().second;
}

RegimeCost CostProfile::regime(size_t node_footprint_bytes) const {
  const double fraction = streaming_curve.fraction(node_footprint_bytes);
  const double kernel_fraction = kernel_streaming_curve.fraction(node_footprint_bytes);
  return {mix(cached.intra_node, streaming.intra_node, fraction),
          mix(cached.inter_node, streaming.inter_node, fraction),
          mix(cached.gamma_us_per_byte, streaming.gamma_us_per_byte, kernel_fraction),
          mix(cached.copy_us_per_byte, streaming.copy_us_per_byte, kernel_fraction),
          mix(cached.shared_write_us_per_byte, streaming.shared_write_us_per_byte, fraction),
          mix(cached.dirty_read_us_per_byte, streaming.dirty_read_us_per_byte, fraction)};
}

size_t node_footprint_bytes(const Topology& topology, const CollectiveArgs& args,
                            const std::vector<Schedule>& schedules) {
  const size_t element = dtype_size(args.dtype);
  const BufferCounts counts = buffer_counts(args.collective, args.count, topology.ranks());
  const size_t buffers = args.inplace ? std::max(counts.input, counts.output) : counts.input + counts.output;
  std::map<int, size_t> per_node;
  for (size_t r = 0; r < schedules.size(); ++r) {
    // Scratch counts as far as the steps touch it: receive slots beyond the segments a size needs stay cold.
    RegionSet scratch(args.inplace);
    for (const Step& step : schedules[r].steps)
      for (const Region* region : {&step.source, &step.operand, &step.target})
        if (region->buffer == BufferKind::scratch) scratch.add(*region);
    scratch.merge();
    per_node[topology.node_of_rank.at(r)] += (buffers + scratch.elements(BufferKind::scratch)) * element;
  }
  size_t busiest = 0;
  for (const auto& [node, bytes] : per_node) busiest = std::max(busiest, bytes);
  return busiest;
}

double predict_time_us(const Topology& topology, const CollectiveArgs& args, const std::vector<Schedule>& schedules,
                       const CostProfile& profile) {
  const size_t ranks = schedules.size();
  const double element = double(dtype_size(args.dtype));
  const RegimeCost costs = profile.regime(node_footprint_bytes(topology, args, schedules));
  struct RankClock {
    double core_free = 0, send_free = 0, recv_free = 0;
  };
  std::vector<RankClock> clocks(ranks);
  std::vector<SharedMemory> shared;
  for (size_t r = 0; r < ranks; ++r) shared.emplace_back(schedules[r], topology, r, args.inplace);
  auto shared_write_us = [&](size_t r, const Region& target) {
    return costs.shared_write_us_per_byte * double(shared[r].read_by_node_peers.overlap(target)) * element;
  };
  std::vector<std::vector<double>> ready_at(ranks), finished_at(ranks);
  std::vector<std::vector<uint32_t>> waiting_on(ranks);
  std::vector<std::vector<std::vector<uint32_t>>> dependents(ranks);
  // Posted transfers waiting for their partner: (sender, receiver, tag) -> step indices.
  std::map<std::tuple<size_t, size_t, uint32_t>, std::vector<uint32_t>> sends, recvs;
  struct Local {
    size_t rank;
    uint32_t step;
  };
  std::vector<Local> local_ready;
  size_t remaining = 0;

  auto make_ready = [&](size_t r, uint32_t i) {
    const Step& step = schedules[r].steps[i];
    if (step.kind == StepKind::send)
      sends[{r, size_t(step.peer), step.tag}].push_back(i);
    else if (step.kind == StepKind::recv)
      recvs[{size_t(step.peer), r, step.tag}].push_back(i);
    else
      local_ready.push_back({r, i});
  };
  auto finish = [&](size_t r, uint32_t i, double time) {
    finished_at[r][i] = time;
    --remaining;
    for (uint32_t next : dependents[r][i]) {
      ready_at[r][next] = std::max(ready_at[r][next], time);
      if (--waiting_on[r][next] == 0) make_ready(r, next);
    }
  };

  for (size_t r = 0; r < ranks; ++r) {
    const auto& steps = schedules[r].steps;
    ready_at[r].assign(steps.size(), 0);
    finished_at[r].assign(steps.size(), 0);
    waiting_on[r].resize(steps.size());
    dependents[r].resize(steps.size());
    remaining += steps.size();
    for (uint32_t i = 0; i < steps.size(); ++i) {
      waiting_on[r][i] = uint32_t(steps[i].deps.size());
      for (uint32_t dep : steps[i].deps) dependents[r][dep].push_back(i);
    }
    for (uint32_t i = 0; i < steps.size(); ++i)
      if (steps[i].deps.empty()) make_ready(r, i);
  }

  // Repeatedly start the event that can start earliest: a local step, or a matched transfer.
  while (remaining > 0) {
    double best_start = 0;
    int best_kind = -1;  // 0 local, 1 transfer
    size_t best_local = 0;
    std::tuple<size_t, size_t, uint32_t> best_key;
    for (size_t k = 0; k < local_ready.size(); ++k) {
      const auto [r, i] = local_ready[k];
      const double start = std::max(ready_at[r][i], clocks[r].core_free);
      if (best_kind < 0 || start < best_start) best_start = start, best_kind = 0, best_local = k;
    }
    for (const auto& [key, posted] : sends) {
      if (posted.empty()) continue;
      auto match = recvs.find(key);
      if (match == recvs.end() || match->second.empty()) continue;
      const auto [from, to, tag] = key;
      // Within a node the receiving process copies the data itself (shared memory, CMA): the
      // transfer needs its core too, so it cannot overlap that rank's reductions.
      const bool same_node = topology.node_of_rank[from] == topology.node_of_rank[to];
      const double start =
          std::max({ready_at[from][posted.front()], ready_at[to][match->second.front()], clocks[from].send_free,
                    clocks[to].recv_free, same_node ? clocks[to].core_free : 0.0});
      if (best_kind < 0 || start < best_start) best_start = start, best_kind = 1, best_key = key;
    }
    if (best_kind < 0) throw Error("cost model: the schedules deadlock");
    if (best_kind == 0) {
      const auto [r, i] = local_ready[best_local];
      local_ready.erase(local_ready.begin() + long(best_local));
      const Step& step = schedules[r].steps[i];
      const double per_byte = step.kind == StepKind::reduce ? costs.gamma_us_per_byte : costs.copy_us_per_byte;
      const double end = best_start + per_byte * double(step.target.count) * element + shared_write_us(r, step.target);
      clocks[r].core_free = end;
      finish(r, i, end);
    } else {
      const auto [from, to, tag] = best_key;
      auto& posted_sends = sends[best_key];
      auto& posted_recvs = recvs[best_key];
      const uint32_t send_step = posted_sends.front(), recv_step = posted_recvs.front();
      posted_sends.erase(posted_sends.begin());
      posted_recvs.erase(posted_recvs.begin());
      const bool same_node = topology.node_of_rank[from] == topology.node_of_rank[to];
      const LinkCost& link = same_node ? costs.intra_node : costs.inter_node;
      const double bytes = double(schedules[from].steps[send_step].source.count) * element;
      const Region& source = schedules[from].steps[send_step].source;
      const double dirty_read_us =
          same_node ? costs.dirty_read_us_per_byte * double(shared[from].written.overlap(source)) * element : 0.0;
      const double end =
          best_start + link.time_us(bytes) + dirty_read_us + shared_write_us(to, schedules[to].steps[recv_step].target);
      clocks[from].send_free = end;
      clocks[to].recv_free = end;
      if (same_node) clocks[to].core_free = end;
      finish(from, send_step, end);
      finish(to, recv_step, end);
    }
  }
  double latest = 0;
  for (const auto& times : finished_at)
    for (double time : times) latest = std::max(latest, time);
  return latest;
}

double predict_time_us(const Algorithm& algorithm, const Topology& topology, const CollectiveArgs& args,
                       const CostProfile& profile) {
  std::vector<Schedule> schedules;
  for (int r = 0; r < topology.ranks(); ++r) schedules.push_back(algorithm.build(topology, r, args));
  return predict_time_us(topology, args, schedules, profile);
}

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

}  // namespace cclab
