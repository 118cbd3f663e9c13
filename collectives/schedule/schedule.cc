#include "cclab/schedule.h"

#include <sstream>

namespace cclab {

uint32_t Schedule::add(Step step) {
  steps.push_back(std::move(step));
  return uint32_t(steps.size() - 1);
}

uint32_t Schedule::send(int peer, uint32_t tag, Region source, std::vector<uint32_t> deps) {
  Step step;
  step.kind = StepKind::send;
  step.peer = peer;
  step.tag = tag;
  step.source = source;
  step.deps = std::move(deps);
  return add(std::move(step));
}

uint32_t Schedule::recv(int peer, uint32_t tag, Region target, std::vector<uint32_t> deps) {
  Step step;
  step.kind = StepKind::recv;
  step.peer = peer;
  step.tag = tag;
  step.target = target;
  step.deps = std::move(deps);
  return add(std::move(step));
}

uint32_t Schedule::reduce(Region target, Region source, Region operand, bool finalize, std::vector<uint32_t> deps) {
  Step step;
  step.kind = StepKind::reduce;
  step.target = target;
  step.source = source;
  step.operand = operand;
  step.finalize = finalize;
  step.deps = std::move(deps);
  return add(std::move(step));
}

uint32_t Schedule::copy(Region target, Region source, std::vector<uint32_t> deps) {
  Step step;
  step.kind = StepKind::copy;
  step.target = target;
  step.source = source;
  step.deps = std::move(deps);
  return add(std::move(step));
}

size_t Schedule::elements_sent() const {
  size_t total = 0;
  for (const Step& step : steps)
    if (step.kind == StepKind::send) total += step.source.count;
  return total;
}

size_t Schedule::elements_received() const {
  size_t total = 0;
  for (const Step& step : steps)
    if (step.kind == StepKind::recv) total += step.target.count;
  return total;
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
