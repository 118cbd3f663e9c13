#include "cclab/simulator.h"

#include <algorithm>
#include <deque>
#include <map>
#include <sstream>
#include <tuple>

namespace cclab {
namespace {

// One input element of one rank.
struct Term {
  uint32_t rank;
  uint64_t index;
  auto operator<=>(const Term&) const = default;
};

struct Value {
  bool defined = false;      // written by the input or by a step, not left-over garbage
  std::vector<Term> terms;   // sorted multiset
  uint32_t divisions = 0;    // how often a final reduction applied the average's division
  bool operator==(const Value&) const = default;
};

Value combine(const Value& a, const Value& b, bool finalize) {
  Value result;
  result.defined = a.defined && b.defined;
  result.terms.resize(a.terms.size() + b.terms.size());
  std::merge(a.terms.begin(), a.terms.end(), b.terms.begin(), b.terms.end(), result.terms.begin());
  result.divisions = a.divisions + b.divisions + (finalize ? 1 : 0);
  return result;
}

// What output element `index` of `rank` must hold.
Value expected_output(const CollectiveArgs& args, int ranks, int rank, size_t index) {
  Value value;
  value.defined = true;
  const size_t per_rank = args.count / size_t(ranks);
  switch (args.collective) {
    case Collective::allreduce:
      for (int r = 0; r < ranks; ++r) value.terms.push_back({uint32_t(r), index});
      value.divisions = ranks > 1 ? 1 : 0;
      break;
    case Collective::reduce:
      if (rank != args.root) return Value{};  // non-root output is unspecified
      for (int r = 0; r < ranks; ++r) value.terms.push_back({uint32_t(r), index});
      value.divisions = ranks > 1 ? 1 : 0;
      break;
    case Collective::reduce_scatter:
      for (int r = 0; r < ranks; ++r) value.terms.push_back({uint32_t(r), size_t(rank) * per_rank + index});
      value.divisions = ranks > 1 ? 1 : 0;
      break;
    case Collective::broadcast: value.terms.push_back({uint32_t(args.root), index}); break;
    case Collective::allgather: value.terms.push_back({uint32_t(index / per_rank), index % per_rank}); break;
  }
  return value;
}

std::string describe(const Value& value) {
  if (!value.defined) return "garbage";
  std::ostringstream os;
  os << "{";
  for (size_t i = 0; i < value.terms.size() && i < 8; ++i)
    os << (i ? " " : "") << "r" << value.terms[i].rank << "[" << value.terms[i].index << "]";
  if (value.terms.size() > 8) os << " ... (" << value.terms.size() << " terms)";
  os << "}";
  if (value.divisions) os << "/" << value.divisions;
  return os.str();
}

class RankState {
 public:
  // Out of place, input and output are separate storage; in place they are windows of one
  // storage (`input_`) at the offsets NCCL uses.
  RankState(const Schedule& schedule, const CollectiveArgs& args, int ranks, int rank)
      : schedule_(schedule), inplace_(args.inplace), counts_(buffer_counts(args.collective, args.count, ranks)) {
    if (inplace_) {
      offsets_ = inplace_offsets(args.collective, args.count, ranks, rank);
      input_.resize(std::max(offsets_.input + counts_.input, offsets_.output + counts_.output));
    } else {
      input_.resize(counts_.input);
      output_.resize(counts_.output);
    }
    // Broadcast's input matters only on the root; elsewhere it is left undefined, so a schedule
    // that forwards a non-root's input is caught.
    const bool has_input = args.collective != Collective::broadcast || rank == args.root;
    for (size_t i = 0; i < counts_.input; ++i)
      input_[offsets_.input + i] = has_input ? Value{true, {{uint32_t(rank), i}}, 0} : Value{};
    scratch_.resize(schedule.scratch_count);
    state_.assign(schedule.steps.size(), State::waiting);
  }

  enum class State { waiting, posted, done };

  // The storage a region lives in, and the region's offset and size limit there.
  struct Window {
    std::vector<Value>* storage;
    size_t base;
    size_t limit;
  };
  Window window(BufferKind kind) {
    switch (kind) {
      case BufferKind::input: return {&input_, offsets_.input, counts_.input};
      case BufferKind::output:
        return inplace_ ? Window{&input_, offsets_.output, counts_.output} : Window{&output_, 0, counts_.output};
      case BufferKind::scratch: break;
    }
    return {&scratch_, 0, scratch_.size()};
  }
  Value& element(BufferKind kind, size_t index) {
    const Window w = window(kind);
    return (*w.storage)[w.base + index];
  }
  size_t size(BufferKind kind) { return window(kind).limit; }
  bool in_bounds(const Region& region) {
    const size_t limit = window(region.buffer).limit;
    return region.offset <= limit && region.count <= limit - region.offset;
  }
  std::vector<Value> read(const Region& region) {
    const Window w = window(region.buffer);
    const auto first = w.storage->begin() + long(w.base + region.offset);
    return {first, first + long(region.count)};
  }
  void write(const Region& region, std::vector<Value> values) {
    const Window w = window(region.buffer);
    std::move(values.begin(), values.end(), w.storage->begin() + long(w.base + region.offset));
  }
  const Schedule& schedule_;
  bool inplace_;
  BufferCounts counts_;
  InplaceOffsets offsets_;
  std::vector<Value> input_, output_, scratch_;
  std::vector<State> state_;
};

struct Message {
  int sender;
  uint32_t step;  // the sender's step index
  std::vector<Value> payload;
};

std::string where(int rank, uint32_t step, const Schedule& schedule) {
  std::string listing = to_string(Schedule{{schedule.steps[step]}, 0});
  listing = listing.substr(listing.find(':') + 2);
  if (!listing.empty() && listing.back() == '\n') listing.pop_back();
  return "rank " + std::to_string(rank) + " step " + std::to_string(step) + " (" + listing + ")";
}

// In place, input and output are windows of one storage at `offsets`.
bool overlaps(const Region& a, const Region& b, bool inplace, InplaceOffsets offsets) {
  auto storage = [&](BufferKind kind) { return inplace && kind == BufferKind::output ? BufferKind::input : kind; };
  auto start = [&](const Region& region) {
    if (!inplace) return region.offset;
    if (region.buffer == BufferKind::input) return offsets.input + region.offset;
    if (region.buffer == BufferKind::output) return offsets.output + region.offset;
    return region.offset;
  };
  if (a.count == 0 || b.count == 0 || storage(a.buffer) != storage(b.buffer)) return false;
  return start(a) < start(b) + b.count && start(b) < start(a) + a.count;
}

// Proves that steps touching the same memory, one of them writing, are ordered by dependencies.
std::string check_dependencies(const Schedule& schedule, int rank, bool inplace, InplaceOffsets offsets) {
  const size_t n = schedule.steps.size();
  const size_t words = (n + 63) / 64;
  std::vector<uint64_t> reach(n * words, 0);  // reach[i] has bit j when j must finish before i
  for (size_t i = 0; i < n; ++i) {
    for (uint32_t dep : schedule.steps[i].deps) {
      if (dep >= i) return where(rank, uint32_t(i), schedule) + " depends on a later step " + std::to_string(dep);
      reach[i * words + dep / 64] |= uint64_t{1} << (dep % 64);
      for (size_t w = 0; w < words; ++w) reach[i * words + w] |= reach[dep * words + w];
    }
  }
  auto accesses = [](const Step& step) {
    std::vector<std::pair<Region, bool>> list;  // (region, writes)
    switch (step.kind) {
      case StepKind::send: list.push_back({step.source, false}); break;
      case StepKind::recv: list.push_back({step.target, true}); break;
      case StepKind::reduce:
        list.push_back({step.source, false});
        list.push_back({step.operand, false});
        list.push_back({step.target, true});
        break;
      case StepKind::copy:
      case StepKind::read_reduce:
        list.push_back({step.source, false});
        list.push_back({step.target, true});
        break;
      case StepKind::expose: list.push_back({step.source, false}); break;
      case StepKind::read: list.push_back({step.target, true}); break;
    }
    return list;
  };
  for (size_t i = 0; i < n; ++i) {
    const auto mine = accesses(schedule.steps[i]);
    for (size_t j = 0; j < i; ++j) {
      if (reach[i * words + j / 64] & (uint64_t{1} << (j % 64))) continue;
      for (const auto& [a, a_writes] : mine)
        for (const auto& [b, b_writes] : accesses(schedule.steps[j]))
          if ((a_writes || b_writes) && overlaps(a, b, inplace, offsets))
            return where(rank, uint32_t(i), schedule) + " races with unordered " +
                   where(rank, uint32_t(j), schedule);
    }
  }
  return {};
}

}  // namespace

size_t SimulationResult::max_elements_sent() const {
  return elements_sent.empty() ? 0 : *std::max_element(elements_sent.begin(), elements_sent.end());
}
size_t SimulationResult::max_elements_received() const {
  return elements_received.empty() ? 0 : *std::max_element(elements_received.begin(), elements_received.end());
}

SimulationResult simulate(const Topology& topology, const CollectiveArgs& args, const std::vector<Schedule>& schedules,
                          const SimulationOptions& options) {
  const int ranks = topology.ranks();
  SimulationResult result;
  result.elements_sent.assign(size_t(ranks), 0);
  result.elements_received.assign(size_t(ranks), 0);
  auto fail = [&](std::string message) {
    result.correct = false;
    result.error = std::move(message);
    return result;
  };

  std::vector<RankState> states;
  states.reserve(size_t(ranks));
  for (int r = 0; r < ranks; ++r) {
    states.emplace_back(schedules[size_t(r)], args, ranks, r);
    if (options.check_dependencies) {
      std::string race = check_dependencies(schedules[size_t(r)], r, args.inplace,
                                            inplace_offsets(args.collective, args.count, ranks, r));
      if (!race.empty()) return fail(race);
    }
  }

  // In-flight sends per (sender, receiver, tag), in posting order; posted receives likewise. Exposed
  // regions and the reads of them pair the same way, apart from sends and receives.
  using Channels = std::map<std::tuple<int, int, uint32_t>, std::deque<Message>>;
  using Posted = std::map<std::tuple<int, int, uint32_t>, std::deque<uint32_t>>;
  Channels channels, exposed;
  Posted posted_receives, posted_reads;

  // Per rank: how many dependencies each step still waits for, and the steps ready to start.
  const size_t rank_count = size_t(ranks);
  std::vector<std::vector<uint32_t>> waiting_on(rank_count), ready(rank_count);
  std::vector<std::vector<std::vector<uint32_t>>> dependents(rank_count);
  for (int r = 0; r < ranks; ++r) {
    const auto& steps = schedules[size_t(r)].steps;
    waiting_on[size_t(r)].resize(steps.size());
    dependents[size_t(r)].resize(steps.size());
    for (uint32_t i = 0; i < steps.size(); ++i) {
      waiting_on[size_t(r)][i] = uint32_t(steps[i].deps.size());
      for (uint32_t dep : steps[i].deps)
        if (dep < steps.size()) dependents[size_t(r)][dep].push_back(i);
      if (steps[i].deps.empty()) ready[size_t(r)].push_back(i);
    }
  }
  auto complete = [&](int r, uint32_t i) {
    states[size_t(r)].state_[i] = RankState::State::done;
    for (uint32_t next : dependents[size_t(r)][i])
      if (--waiting_on[size_t(r)][next] == 0) ready[size_t(r)].push_back(next);
  };

  bool progressed = true;
  while (progressed) {
    progressed = false;
    for (int r = 0; r < ranks; ++r) {
      RankState& me = states[size_t(r)];
      const Schedule& schedule = schedules[size_t(r)];
      while (!ready[size_t(r)].empty()) {
        const uint32_t i = ready[size_t(r)].back();
        ready[size_t(r)].pop_back();
        const Step& step = schedule.steps[i];
        const bool exposes = step.kind == StepKind::send || step.kind == StepKind::expose;
        const bool reads_peer = step.kind == StepKind::read || step.kind == StepKind::read_reduce;
        for (const Region* region : {&step.source, &step.operand, &step.target}) {
          const bool used = (region == &step.source && step.kind != StepKind::recv && step.kind != StepKind::read) ||
                            (region == &step.operand && step.kind == StepKind::reduce) ||
                            (region == &step.target && !exposes);
          if (used && !me.in_bounds(*region)) return fail(where(r, i, schedule) + " is out of bounds");
        }
        const bool has_peer = exposes || reads_peer || step.kind == StepKind::recv;
        if (has_peer && (step.peer < 0 || step.peer >= ranks || step.peer == r))
          return fail(where(r, i, schedule) + " names an invalid peer");
        if (step.kind == StepKind::expose || reads_peer) {
          if (topology.node_of_rank[size_t(step.peer)] != topology.node_of_rank[size_t(r)])
            return fail(where(r, i, schedule) + " reaches into the memory of a rank on another node");
          if (step.tag >= kPeerReadTags)
            return fail(where(r, i, schedule) + " has a tag beyond the " + std::to_string(kPeerReadTags) +
                        " the executor has flag slots for");
        }
        progressed = true;
        switch (step.kind) {
          case StepKind::send:
          case StepKind::expose:
            // The payload is captured when the send is posted; the sender must not modify the
            // region until the send completes, which check_dependencies() enforces.
            (step.kind == StepKind::send ? channels : exposed)[{r, step.peer, step.tag}].push_back(
                {r, i, me.read(step.source)});
            result.elements_sent[size_t(r)] += step.source.count;
            me.state_[i] = RankState::State::posted;
            break;
          case StepKind::recv:
          case StepKind::read:
          case StepKind::read_reduce:
            (step.kind == StepKind::recv ? posted_receives : posted_reads)[{step.peer, r, step.tag}].push_back(i);
            result.elements_received[size_t(r)] += step.target.count;
            me.state_[i] = RankState::State::posted;
            break;
          case StepKind::reduce: {
            std::vector<Value> source = me.read(step.source), operand = me.read(step.operand);
            for (size_t k = 0; k < source.size(); ++k) source[k] = combine(source[k], operand[k], step.finalize);
            me.write(step.target, std::move(source));
            complete(r, i);
            break;
          }
          case StepKind::copy:
            me.write(step.target, me.read(step.source));
            complete(r, i);
            break;
        }
      }
    }
    // Match sends with posted receives, and exposed regions with reads; both sides complete
    // together (rendezvous).
    for (auto [sent, posted] : {std::pair{&channels, &posted_receives}, std::pair{&exposed, &posted_reads}}) {
      for (auto entry = posted->begin(); entry != posted->end();) {
        const auto& key = entry->first;
        auto& receives = entry->second;
        auto channel = sent->find(key);
        while (!receives.empty() && channel != sent->end() && !channel->second.empty()) {
          const auto [sender, receiver, tag] = key;
          Message message = std::move(channel->second.front());
          channel->second.pop_front();
          const uint32_t recv_step = receives.front();
          receives.pop_front();
          RankState& target = states[size_t(receiver)];
          const Step& step = schedules[size_t(receiver)].steps[recv_step];
          if (message.payload.size() != step.target.count)
            return fail(where(receiver, recv_step, schedules[size_t(receiver)]) + " expects " +
                        std::to_string(step.target.count) + " elements but " +
                        where(sender, message.step, schedules[size_t(sender)]) + " sends " +
                        std::to_string(message.payload.size()));
          if (step.kind == StepKind::read_reduce) {
            std::vector<Value> source = target.read(step.source);
            for (size_t k = 0; k < source.size(); ++k)
              message.payload[k] = combine(source[k], message.payload[k], step.finalize);
          }
          target.write(step.target, std::move(message.payload));
          complete(receiver, recv_step);
          complete(sender, message.step);
          progressed = true;
        }
        if (channel != sent->end() && channel->second.empty()) sent->erase(channel);
        entry = receives.empty() ? posted->erase(entry) : std::next(entry);
      }
    }
  }

  for (const Channels* unmatched : {&channels, &exposed})
    if (!unmatched->empty()) {
      const auto& [key, messages] = *unmatched->begin();
      const int sender = std::get<0>(key);
      return fail(where(sender, messages.front().step, schedules[size_t(sender)]) + " is never " +
                  (unmatched == &channels ? "received" : "read"));
    }
  for (int r = 0; r < ranks; ++r)
    for (uint32_t i = 0; i < schedules[size_t(r)].steps.size(); ++i)
      if (states[size_t(r)].state_[i] != RankState::State::done)
        return fail("deadlock: " + where(r, i, schedules[size_t(r)]) + " never completes");

  for (int r = 0; r < ranks; ++r) {
    RankState& me = states[size_t(r)];
    for (size_t i = 0; i < me.size(BufferKind::output); ++i) {
      const Value expected = expected_output(args, ranks, r, i);
      if (!expected.defined) continue;
      const Value& got = me.element(BufferKind::output, i);
      if (!(got == expected))
        return fail("rank " + std::to_string(r) + " output[" + std::to_string(i) + "] is " + describe(got) +
                    ", expected " + describe(expected));
    }
    if (!args.inplace)
      for (size_t i = 0; i < me.size(BufferKind::input); ++i) {
        const Value& got = me.element(BufferKind::input, i);
        if (got.defined && !(got == Value{true, {{uint32_t(r), i}}, 0}))
          return fail("rank " + std::to_string(r) + " input[" + std::to_string(i) + "] was modified");
      }
  }
  result.correct = true;
  return result;
}

SimulationResult simulate(const Algorithm& algorithm, const Topology& topology, const CollectiveArgs& args,
                          const SimulationOptions& options) {
  std::vector<Schedule> schedules;
  for (int r = 0; r < topology.ranks(); ++r) schedules.push_back(algorithm.build(topology, r, args));
  return simulate(topology, args, schedules, options);
}

PredictedTraffic predict_traffic(const Algorithm& algorithm, const Topology& topology, const CollectiveArgs& args) {
  PredictedTraffic traffic;
  const size_t element = dtype_size(args.dtype);
  for (int r = 0; r < topology.ranks(); ++r) {
    const Schedule schedule = algorithm.build(topology, r, args);
    traffic.max_bytes_sent = std::max(traffic.max_bytes_sent, schedule.elements_sent() * element);
    traffic.max_bytes_received = std::max(traffic.max_bytes_received, schedule.elements_received() * element);
  }
  return traffic;
}

}  // namespace cclab
