#include "cclab/cost_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "cclab/error.h"
#include "patterns/hierarchy.h"
#include "schedule/region_set.h"

namespace cclab {

namespace {

// Where a rank's memory is shared with the other cores of its node: what it sends to same-node
// peers (their cores read it), and what it writes (a peer reading it reads lines dirty in this
// rank's cache).
struct SharedMemory {
  RegionSet read_by_node_peers, written;
  SharedMemory(const Schedule& schedule, const Topology& topology, size_t rank, bool inplace)
      : read_by_node_peers(inplace), written(inplace) {
    for (const Step& step : schedule.steps) {
      const bool exposes = step.kind == StepKind::send || step.kind == StepKind::expose;
      if (exposes && topology.node_of_rank.at(size_t(step.peer)) == topology.node_of_rank.at(rank))
        read_by_node_peers.add(step.source);
      if (!exposes) written.add(step.target);
    }
    read_by_node_peers.merge();
    written.merge();
  }
};

}  // namespace

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
  // Each host's ports, per direction: when each is next free. A rank's port follows its index on its node.
  const int host_ports = std::max(1, profile.host_ports.ports);
  const NodeLayout layout(topology.node_of_rank);
  auto port_of = [&](size_t r) {
    return size_t(layout.node_of(int(r)) * host_ports + layout.local_index(int(r)) % host_ports);
  };
  std::vector<double> port_send_free(size_t(layout.nodes() * host_ports)), port_recv_free(port_send_free.size());
  std::vector<SharedMemory> shared;
  for (size_t r = 0; r < ranks; ++r) shared.emplace_back(schedules[r], topology, r, args.inplace);
  auto shared_write_us = [&](size_t r, const Region& target) {
    return costs.shared_write_us_per_byte * double(shared[r].read_by_node_peers.overlap(target)) * element;
  };
  // A peer within the node reading what `r` wrote pulls the lines from r's cache.
  auto dirty_read_us = [&](size_t r, const Region& source) {
    return costs.dirty_read_us_per_byte * double(shared[r].written.overlap(source)) * element;
  };
  std::vector<std::vector<double>> ready_at(ranks), finished_at(ranks);
  std::vector<std::vector<uint32_t>> waiting_on(ranks);
  std::vector<std::vector<std::vector<uint32_t>>> dependents(ranks);
  // Posted transfers waiting for their partner: (sender, receiver, tag) -> step indices; exposed
  // regions and their reads likewise.
  using Posted = std::map<std::tuple<size_t, size_t, uint32_t>, std::vector<uint32_t>>;
  Posted sends, recvs, exposes, reads;
  struct Local {
    size_t rank;
    uint32_t step;
  };
  std::vector<Local> local_ready;
  // The first posted step of each side of the matched pair `key`, taken off both lists. A list
  // left empty leaves its map, so the search for the next event scans only what is posted.
  auto take_first = [](Posted& one, Posted& other, const Posted::key_type& key) {
    const auto take = [&key](Posted& posted) {
      const auto found = posted.find(key);
      const uint32_t step = found->second.front();
      found->second.erase(found->second.begin());
      if (found->second.empty()) posted.erase(found);
      return step;
    };
    return std::pair<uint32_t, uint32_t>{take(one), take(other)};
  };
  size_t remaining = 0;

  auto make_ready = [&](size_t r, uint32_t i) {
    const Step& step = schedules[r].steps[i];
    if (step.kind == StepKind::send)
      sends[{r, size_t(step.peer), step.tag}].push_back(i);
    else if (step.kind == StepKind::recv)
      recvs[{size_t(step.peer), r, step.tag}].push_back(i);
    else if (step.kind == StepKind::expose)
      exposes[{r, size_t(step.peer), step.tag}].push_back(i);
    else if (step.kind == StepKind::read || step.kind == StepKind::read_reduce)
      reads[{size_t(step.peer), r, step.tag}].push_back(i);
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

  // Repeatedly start the event that can start earliest: a local step, a matched transfer, or a
  // read of an exposed region (the reader's core does it: a copy or a reduction from the peer's
  // memory, after a flag handshake that costs what a small message within the node does).
  while (remaining > 0) {
    double best_start = 0;
    int best_kind = -1;  // 0 local, 1 transfer, 2 peer read
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
      const bool same_node = topology.same_node(int(from), int(to));
      const double start =
          std::max({ready_at[from][posted.front()], ready_at[to][match->second.front()], clocks[from].send_free,
                    clocks[to].recv_free, same_node ? clocks[to].core_free : 0.0});
      if (best_kind < 0 || start < best_start) best_start = start, best_kind = 1, best_key = key;
    }
    for (const auto& [key, posted] : exposes) {
      if (posted.empty()) continue;
      auto match = reads.find(key);
      if (match == reads.end() || match->second.empty()) continue;
      const auto [owner, reader, tag] = key;
      const double start =
          std::max({ready_at[owner][posted.front()], ready_at[reader][match->second.front()], clocks[reader].core_free});
      if (best_kind < 0 || start < best_start) best_start = start, best_kind = 2, best_key = key;
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
    } else if (best_kind == 2) {
      const auto [owner, reader, tag] = best_key;
      const auto [expose_step, read_step] = take_first(exposes, reads, best_key);
      const Step& read = schedules[reader].steps[read_step];
      const Region& source = schedules[owner].steps[expose_step].source;
      const double per_byte = read.kind == StepKind::read_reduce ? costs.gamma_us_per_byte : costs.copy_us_per_byte;
      const double end = best_start + costs.intra_node.time_us(0) + per_byte * double(read.target.count) * element +
                         dirty_read_us(owner, source) + shared_write_us(reader, read.target);
      clocks[reader].core_free = end;
      finish(owner, expose_step, end);
      finish(reader, read_step, end);
    } else {
      const auto [from, to, tag] = best_key;
      const auto [send_step, recv_step] = take_first(sends, recvs, best_key);
      const bool same_node = topology.same_node(int(from), int(to));
      const LinkCost& link = same_node ? costs.intra_node : costs.inter_node;
      const double bytes = double(schedules[from].steps[send_step].source.count) * element;
      const Region& source = schedules[from].steps[send_step].source;
      double end = best_start + link.time_us(bytes) + (same_node ? dirty_read_us(from, source) : 0.0) +
                   shared_write_us(to, schedules[to].steps[recv_step].target);
      // The ranks' own ports are busy for the flow's own time. Bytes queued behind a host's port
      // wait in the network stack, not in the ranks: meanwhile they send and receive inside the node.
      clocks[from].send_free = end;
      clocks[to].recv_free = end;
      if (!same_node && profile.host_ports.us_per_byte > 0) {
        double& leaving = port_send_free[port_of(from)];
        double& arriving = port_recv_free[port_of(to)];
        const double bytes_through =
            std::max({best_start, leaving, arriving}) + profile.host_ports.port_us_per_byte() * bytes;
        leaving = arriving = bytes_through;
        end = std::max(end, bytes_through + link.latency_us(bytes));
      }
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

}  // namespace cclab
