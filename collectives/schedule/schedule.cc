#include "cclab/schedule.h"

#include <sstream>

namespace cclab {

uint32_t Schedule::add(Step step) {
  steps.push_back(std::move(step));
  return uint32_t(steps.size() - 1);
}

namespace {

// A step of `kind` with a peer and tag (transfers and peer reads; -1 and 0 for local steps).
Step step_of(StepKind kind, int peer, uint32_t tag, Region source, Region target, std::vector<uint32_t> deps) {
  Step step;
  step.kind = kind;
  step.peer = peer;
  step.tag = tag;
  step.source = source;
  step.target = target;
  step.deps = std::move(deps);
  return step;
}

}  // namespace

uint32_t Schedule::send(int peer, uint32_t tag, Region source, std::vector<uint32_t> deps) {
  return add(step_of(StepKind::send, peer, tag, source, {}, std::move(deps)));
}

uint32_t Schedule::recv(int peer, uint32_t tag, Region target, std::vector<uint32_t> deps) {
  return add(step_of(StepKind::recv, peer, tag, {}, target, std::move(deps)));
}

uint32_t Schedule::reduce(Region target, Region source, Region operand, bool finalize, std::vector<uint32_t> deps) {
  Step step = step_of(StepKind::reduce, -1, 0, source, target, std::move(deps));
  step.operand = operand;
  step.finalize = finalize;
  return add(std::move(step));
}

uint32_t Schedule::copy(Region target, Region source, std::vector<uint32_t> deps) {
  return add(step_of(StepKind::copy, -1, 0, source, target, std::move(deps)));
}

uint32_t Schedule::expose(int peer, uint32_t tag, Region source, std::vector<uint32_t> deps) {
  return add(step_of(StepKind::expose, peer, tag, source, {}, std::move(deps)));
}

uint32_t Schedule::read(int peer, uint32_t tag, Region target, std::vector<uint32_t> deps) {
  return add(step_of(StepKind::read, peer, tag, {}, target, std::move(deps)));
}

uint32_t Schedule::read_reduce(int peer, uint32_t tag, Region target, Region source, bool finalize,
                               std::vector<uint32_t> deps) {
  Step step = step_of(StepKind::read_reduce, peer, tag, source, target, std::move(deps));
  step.finalize = finalize;
  return add(std::move(step));
}

bool Schedule::reads_peers() const {
  for (const Step& step : steps)
    if (step.kind == StepKind::expose || step.kind == StepKind::read || step.kind == StepKind::read_reduce) return true;
  return false;
}

size_t Schedule::elements_sent() const {
  size_t total = 0;
  for (const Step& step : steps)
    if (step.kind == StepKind::send || step.kind == StepKind::expose) total += step.source.count;
  return total;
}

size_t Schedule::elements_received() const {
  size_t total = 0;
  for (const Step& step : steps)
    if (step.kind == StepKind::recv || step.kind == StepKind::read || step.kind == StepKind::read_reduce)
      total += step.target.count;
  return total;
}

Schedule through_transport(const Schedule& schedule, const std::function<bool(int peer)>& addressable) {
  // First every step keeps its index, a read_reduce becoming its receive, and the reductions that
  // follow receives are appended (renamed[i] is the step that completes original step i)...
  Schedule result = schedule;
  std::vector<uint32_t> renamed(schedule.steps.size());
  for (uint32_t i = 0; i < schedule.steps.size(); ++i) renamed[i] = i;
  for (uint32_t i = 0; i < schedule.steps.size(); ++i) {
    Step& step = result.steps[i];
    const bool peer_read =
        step.kind == StepKind::expose || step.kind == StepKind::read || step.kind == StepKind::read_reduce;
    if (!peer_read || (addressable && addressable(step.peer))) continue;
    if (step.kind == StepKind::expose) step.kind = StepKind::send;
    if (step.kind == StepKind::read) step.kind = StepKind::recv;
    if (step.kind != StepKind::read_reduce) continue;
    const Region landing{BufferKind::scratch, result.scratch_count, step.target.count};
    result.scratch_count += step.target.count;
    Step reduction;
    reduction.kind = StepKind::reduce;
    reduction.target = step.target;
    reduction.source = step.source;
    reduction.operand = landing;
    reduction.finalize = step.finalize;
    reduction.deps = {i};
    renamed[i] = uint32_t(result.steps.size());
    step.kind = StepKind::recv;
    step.target = landing;
    step.source = {};
    step.finalize = false;
    result.steps.push_back(std::move(reduction));
  }
  // ...then each reduction moves to right after its receive, and the dependents of a read_reduce
  // wait for its reduction.
  std::vector<uint32_t> position(result.steps.size());
  std::vector<uint32_t> order;
  for (uint32_t i = 0; i < schedule.steps.size(); ++i) {
    order.push_back(i);
    if (renamed[i] != i) order.push_back(renamed[i]);
  }
  for (uint32_t p = 0; p < order.size(); ++p) position[order[p]] = p;
  Schedule ordered;
  ordered.scratch_count = result.scratch_count;
  for (uint32_t old : order) {
    Step step = result.steps[old];
    for (uint32_t& dep : step.deps) dep = position[old >= schedule.steps.size() ? dep : renamed[dep]];
    ordered.steps.push_back(std::move(step));
  }
  return ordered;
}

static const char* buffer_name(BufferKind kind) {
  switch (kind) {
    case BufferKind::input: return "in";
    case BufferKind::output: return "out";
    case BufferKind::scratch: return "scratch";
  }
  return "?";
}

static std::ostream& operator<<(std::ostream& os, const Region& region) {
  return os << buffer_name(region.buffer) << "[" << region.offset << ":+" << region.count << "]";
}

std::string to_string(const Schedule& schedule) {
  std::ostringstream os;
  for (size_t i = 0; i < schedule.steps.size(); ++i) {
    const Step& step = schedule.steps[i];
    os << i << ": ";
    switch (step.kind) {
      case StepKind::send: os << "send " << step.source << " to " << step.peer << " tag " << step.tag; break;
      case StepKind::recv: os << "recv " << step.target << " from " << step.peer << " tag " << step.tag; break;
      case StepKind::reduce:
        os << "reduce " << step.target << " = " << step.source << " op " << step.operand
           << (step.finalize ? " (final)" : "");
        break;
      case StepKind::copy: os << "copy " << step.target << " = " << step.source; break;
      case StepKind::expose: os << "expose " << step.source << " to " << step.peer << " tag " << step.tag; break;
      case StepKind::read: os << "read " << step.target << " from " << step.peer << " tag " << step.tag; break;
      case StepKind::read_reduce:
        os << "read_reduce " << step.target << " = " << step.source << " op " << step.peer << "'s tag " << step.tag
           << (step.finalize ? " (final)" : "");
        break;
    }
    if (!step.deps.empty()) {
      os << " after";
      for (uint32_t dep : step.deps) os << " " << dep;
    }
    os << "\n";
  }
  return os.str();
}

}  // namespace cclab
