#include "cclab/host_executor.h"

#include <cstring>
#include <set>
#include <string>

#include "cclab/error.h"
#include "cclab/reduce.h"

namespace cclab {

CompiledSchedule::CompiledSchedule(Schedule schedule) : schedule_(std::move(schedule)) {
  dependents_.resize(schedule_.steps.size());
  for (uint32_t i = 0; i < schedule_.steps.size(); ++i) {
    const auto& deps = schedule_.steps[i].deps;
    if (deps.empty()) roots_.push_back(i);
    for (uint32_t dep : deps) dependents_[dep].push_back(i);
  }
}

void HostExecutor::run(const CompiledSchedule& compiled, HostBuffers buffers, DataType type, ReduceOp op,
                       uint64_t sequence, Deadline deadline) {
  const Schedule& schedule = compiled.schedule();
  const size_t element = dtype_size(type);
  if (scratch_.size() < schedule.scratch_count * element) scratch_.resize(schedule.scratch_count * element);

  auto address = [&](const Region& region) -> std::byte* {
    std::byte* base = nullptr;
    switch (region.buffer) {
      case BufferKind::input: base = static_cast<std::byte*>(const_cast<void*>(buffers.input)); break;
      case BufferKind::output: base = static_cast<std::byte*>(buffers.output); break;
      case BufferKind::scratch: base = scratch_.data(); break;
    }
    return base + region.offset * element;
  };

  const size_t total = schedule.steps.size();
  waiting_on_.resize(total);
  for (size_t i = 0; i < total; ++i) waiting_on_[i] = uint32_t(schedule.steps[i].deps.size());
  ready_.assign(compiled.roots().rbegin(), compiled.roots().rend());  // a stack: lowest index on top
  in_flight_.clear();
  size_t completed = 0;
  const int divisor = op == ReduceOp::avg ? transport_.size() : 1;

  auto finish = [&](uint32_t step) {
    ++completed;
    const auto& next = compiled.dependents(step);
    for (auto it = next.rbegin(); it != next.rend(); ++it)
      if (--waiting_on_[*it] == 0) ready_.push_back(*it);
  };

  Backoff backoff(transport_.yield_when_idle());
  while (completed < total) {
    // Start everything that is ready. Transfers are posted, local work runs now.
    while (!ready_.empty()) {
      const uint32_t index = ready_.back();
      ready_.pop_back();
      const Step& step = schedule.steps[index];
      const uint64_t tag = message_tag(sequence, step.tag);
      switch (step.kind) {
        case StepKind::send:
          in_flight_.emplace_back(index,
                                  transport_.send(step.peer, address(step.source), step.source.count * element, tag));
          break;
        case StepKind::recv:
          in_flight_.emplace_back(index,
                                  transport_.recv(step.peer, address(step.target), step.target.count * element, tag));
          break;
        case StepKind::reduce:
          reduce(address(step.target), address(step.source), address(step.operand), step.target.count, type, op,
                 step.finalize ? divisor : 1);
          finish(index);
          break;
        case StepKind::copy:
          if (address(step.target) != address(step.source))
            std::memcpy(address(step.target), address(step.source), step.target.count * element);
          finish(index);
          break;
      }
    }
    if (completed == total) break;

    bool moved = transport_.progress();
    for (size_t i = 0; i < in_flight_.size();) {
      if (in_flight_[i].second->complete()) {
        const uint32_t index = in_flight_[i].first;
        in_flight_[i] = std::move(in_flight_.back());
        in_flight_.pop_back();
        finish(index);
        moved = true;
      } else {
        ++i;
      }
    }
    if (moved) {
      backoff.reset();
      continue;
    }
    if (deadline.passed()) {
      std::set<int> peers;
      for (const auto& [index, request] : in_flight_) peers.insert(request->peer);
      std::string names;
      for (int peer : peers) names += (names.empty() ? "" : ", ") + std::to_string(peer);
      throw TimeoutError("rank " + std::to_string(transport_.rank()) + " timed out in a collective waiting for rank" +
                         (peers.size() > 1 ? "s " : " ") + names);
    }
    backoff.idle();
  }
}

}  // namespace cclab
