#include "cclab/host_executor.h"

#include <cstring>
#include <functional>
#include <set>
#include <string>

#include "cclab/error.h"
#include "cclab/reduce.h"
#include "cclab/streaming_copy.h"
#include "schedule/region_set.h"

namespace cclab {

CompiledSchedule::CompiledSchedule(Schedule schedule) : schedule_(std::move(schedule)) {
  dependents_.resize(schedule_.steps.size());
  for (uint32_t i = 0; i < schedule_.steps.size(); ++i) {
    const auto& deps = schedule_.steps[i].deps;
    if (deps.empty()) roots_.push_back(i);
    for (uint32_t dep : deps) dependents_[dep].push_back(i);
  }
}

namespace {

bool reduces(const Step& step) { return step.kind == StepKind::reduce || step.kind == StepKind::read_reduce; }

bool is_final_reduction_into_output(const Step& step) {
  return reduces(step) && step.finalize && step.target.buffer == BufferKind::output;
}

// A reduction that adds to what its target holds (target = target op x): it reads its elements
// before they are final.
bool accumulates(const Step& step) {
  return reduces(step) && step.source.buffer == step.target.buffer && step.source.offset == step.target.offset &&
         step.source.count == step.target.count;
}

// The elements that `schedule`'s steps read (each buffer's own regions). `but_final_sums`: only
// what may read the final sums once made, so leaving out the final reductions into the output and
// the accumulations that make them.
RegionSet regions_read(const Schedule& schedule, bool but_final_sums) {
  RegionSet read(/*inplace=*/false);
  for (const Step& step : schedule.steps) {
    if (but_final_sums && (is_final_reduction_into_output(step) || accumulates(step))) continue;
    switch (step.kind) {
      case StepKind::send:
      case StepKind::copy:
      case StepKind::expose:
      case StepKind::read_reduce:
        read.add(step.source);
        break;
      case StepKind::reduce:
        read.add(step.source);
        read.add(step.operand);
        break;
      case StepKind::recv:
      case StepKind::read:
        break;
    }
  }
  read.merge();
  return read;
}

}  // namespace

void CompiledSchedule::find_consumed_reductions() {
  if (!consumed_reductions_.empty()) return;
  const RegionSet read = regions_read(schedule_, /*but_final_sums=*/true);
  consumed_reductions_.assign(schedule_.steps.size(), false);
  every_reduction_consumable_ = true;
  for (uint32_t i = 0; i < schedule_.steps.size(); ++i) {
    const Step& step = schedule_.steps[i];
    if (!is_final_reduction_into_output(step)) continue;
    consumed_reductions_[i] = read.overlap(step.target) == 0;
    every_reduction_consumable_ = every_reduction_consumable_ && consumed_reductions_[i];
  }
}

void CompiledSchedule::stream_final_copies(bool on) {
  streams_final_copies_ = on;
  if (!on || !final_copies_.empty()) return;
  // A copy into the output is final when no step reads any of its elements.
  const RegionSet read = regions_read(schedule_, /*but_final_sums=*/false);
  final_copies_.assign(schedule_.steps.size(), false);
  for (uint32_t i = 0; i < schedule_.steps.size(); ++i) {
    const Step& step = schedule_.steps[i];
    final_copies_[i] = (step.kind == StepKind::copy || step.kind == StepKind::read) &&
                       step.target.buffer == BufferKind::output && read.overlap(step.target) == 0;
  }
}

PendingCollective::PendingCollective(Transport& transport, PeerMemory* peers, const CompiledSchedule& compiled,
                                     HostBuffers buffers, DataType type, ReduceOp op, uint64_t sequence,
                                     std::shared_ptr<std::vector<std::byte>> scratch, SumConsumer consume)
    : transport_(transport), peers_(peers), consume_(std::move(consume)) {
  if (consume_ && (op != ReduceOp::sum || !compiled.every_reduction_consumable()))
    throw Error("a collective's sums can be consumed only where it reads none of them again (a sum, and "
                "CompiledSchedule::find_consumed_reductions)");
  restart(compiled, buffers, type, op, sequence, std::move(scratch));
}

void PendingCollective::restart(const CompiledSchedule& compiled, HostBuffers buffers, DataType type, ReduceOp op,
                                uint64_t sequence, std::shared_ptr<std::vector<std::byte>> scratch) {
  compiled_ = &compiled;
  buffers_ = buffers;
  type_ = type;
  op_ = op;
  sequence_ = sequence;
  scratch_ = std::move(scratch);
  element_ = dtype_size(type);
  divisor_ = op == ReduceOp::avg ? transport_.size() : 1;
  const Schedule& schedule = compiled.schedule();
  total_ = schedule.steps.size();
  completed_ = 0;
  waiting_on_.resize(total_);
  for (size_t i = 0; i < total_; ++i) waiting_on_[i] = uint32_t(schedule.steps[i].deps.size());
  ready_.assign(compiled.roots().rbegin(), compiled.roots().rend());
  in_flight_.clear();
  TraceRecorder* trace = active_trace();
  trace_ = trace && trace->schedule_steps() ? trace : nullptr;
  if (total_ == 0) scratch_.reset();
  start_ready_steps();
}

std::byte* PendingCollective::address(const Region& region) const {
  return region_address(region, buffers_.input, buffers_.output, scratch_ ? scratch_->data() : nullptr, element_);
}

PeerMemory& PendingCollective::peers() const {
  if (!peers_) throw Error("a schedule reads peers' memory, but this rank has none it can address");
  return *peers_;
}

void PendingCollective::finish(uint32_t step) {
  if (++completed_ == total_) scratch_.reset();  // back to the executor's pool for the next call
  const auto& next = compiled_->dependents(step);
  for (auto it = next.rbegin(); it != next.rend(); ++it)
    if (--waiting_on_[*it] == 0) ready_.push_back(*it);
}

// Transfers are posted, local work runs now (and may make more steps ready).
void PendingCollective::start_ready_steps() {
  const Schedule& schedule = compiled_->schedule();
  while (!ready_.empty()) {
    const uint32_t index = ready_.back();
    ready_.pop_back();
    const Step& step = schedule.steps[index];
    const uint64_t tag = message_tag(sequence_, step.tag);
    const double start_us = trace_ ? trace_->now_us() : 0;
    switch (step.kind) {
      case StepKind::send:
        track(index, transport_.send(step.peer, address(step.source), step.source.count * element_, tag), start_us);
        break;
      case StepKind::recv:
        track(index, transport_.recv(step.peer, address(step.target), step.target.count * element_, tag), start_us);
        break;
      case StepKind::reduce:
        if (consumed(index))
          consume_sum(index, address(step.operand));
        else
          reduce(address(step.target), address(step.source), address(step.operand), step.target.count, type_, op_,
                 step.finalize ? divisor_ : 1);
        if (trace_) trace_step(step, start_us);
        finish(index);
        break;
      case StepKind::copy:
        if (std::byte* target = address(step.target); target != address(step.source)) {
          const size_t bytes = step.target.count * element_;
          if (streams(index, bytes))
            streaming_copy(target, address(step.source), bytes);
          else
            std::memcpy(target, address(step.source), bytes);
        }
        if (trace_) trace_step(step, start_us);
        finish(index);
        break;
      case StepKind::expose:
        track(index,
              peers().expose(step.peer, step.tag, sequence_, address(step.source), step.source.count * element_,
                             transport_.traffic()),
              start_us);
        break;
      case StepKind::read:
      case StepKind::read_reduce: {
        std::byte* target = address(step.target);
        const size_t count = step.target.count;
        std::function<void(const std::byte*)> consume;
        // Two captures, no more: std::function holds them without an allocation per step.
        if (step.kind == StepKind::read && streams(index, count * element_)) {
          consume = [target, bytes = count * element_](const std::byte* data) { streaming_copy(target, data, bytes); };
        } else if (step.kind == StepKind::read) {
          consume = [target, bytes = count * element_](const std::byte* data) { std::memcpy(target, data, bytes); };
        } else if (consumed(index)) {
          consume = [this, index](const std::byte* data) { consume_sum(index, data); };
        } else {
          consume = [target, source = address(step.source), count, type = type_, op = op_,
                     divisor = step.finalize ? divisor_ : 1](const std::byte* data) {
            reduce(target, source, data, count, type, op, divisor);
          };
        }
        track(index,
              peers().read(step.peer, step.tag, sequence_, count * element_, std::move(consume), transport_.traffic()),
              start_us);
        break;
      }
    }
  }
}

void PendingCollective::consume_sum(uint32_t step, const std::byte* operand) {
  const Step& reduction = compiled_->schedule().steps[step];
  consume_(address(reduction.source), operand, reduction.target.count, reduction.target.offset);
}

// A transfer that completed while it was posted (its message was there, or the owner's exposure
// was, and the read was done in place) finishes at once: its dependents, such as the exposure of a
// chunk just reduced, go out before the next ready step's work, so peers waiting on them start now
// rather than after every ready step has run.
void PendingCollective::track(uint32_t step, RequestPtr request, double posted_us) {
  if (request->complete())
    finish_transfer(step, posted_us);
  else
    in_flight_.push_back({step, std::move(request), posted_us});
}

void PendingCollective::finish_transfer(uint32_t step, double posted_us) {
  if (trace_) trace_step(compiled_->schedule().steps[step], posted_us);
  finish(step);
}

bool PendingCollective::streams(uint32_t step, size_t bytes) const {
  return bytes >= kStreamingCopyFromBytes && compiled_->streams(step);
}

// A transfer's span runs from its posting to the poll that saw it complete; a reduction's or
// copy's is the work itself.
void PendingCollective::trace_step(const Step& step, double start_us) {
  static constexpr std::string_view kNames[] = {"send", "recv", "reduce", "copy", "expose", "read", "read_reduce"};
  const std::string_view name = kNames[static_cast<int>(step.kind)];
  const bool exposes = step.kind == StepKind::send || step.kind == StepKind::expose;
  const Region& region = exposes ? step.source : step.target;
  std::string args = trace_arg("bytes", double(region.count * element_));
  if (step.peer >= 0) {
    args += ',';
    args += trace_arg("peer", step.peer);
  }
  trace_->add(name, name, start_us, trace_->now_us(), std::move(args));
}

bool PendingCollective::test() {
  if (done()) return true;
  transport_.progress();
  bool finished = false;
  for (size_t i = 0; i < in_flight_.size();) {
    if (in_flight_[i].request->complete()) {
      finish_transfer(in_flight_[i].step, in_flight_[i].posted_us);
      in_flight_[i] = std::move(in_flight_.back());
      in_flight_.pop_back();
      finished = true;
    } else {
      ++i;
    }
  }
  if (finished) start_ready_steps();
  return done();
}

void PendingCollective::wait(Deadline deadline) {
  Backoff backoff(transport_.yield_when_idle());
  while (!done()) {
    const size_t before = completed_;
    if (test()) break;
    if (completed_ != before) {
      backoff.reset();
      continue;
    }
    if (backoff.expired(deadline)) {
      std::set<int> peers;
      for (const InFlight& transfer : in_flight_) peers.insert(transfer.request->peer);
      std::string names;
      for (int peer : peers) names += (names.empty() ? "" : ", ") + std::to_string(peer);
      throw TimeoutError("rank " + std::to_string(transport_.rank()) + " timed out in a collective waiting for rank" +
                         (peers.size() > 1 ? "s " : " ") + names);
    }
    backoff.idle();
  }
}

std::shared_ptr<std::vector<std::byte>> HostExecutor::free_scratch(size_t bytes) {
  if (bytes == 0) return nullptr;
  std::shared_ptr<std::vector<std::byte>> chosen;
  for (auto& buffer : scratch_pool_)
    if (buffer.use_count() == 1) {  // only the pool holds it: no call in flight uses it
      chosen = buffer;
      break;
    }
  if (!chosen) chosen = scratch_pool_.emplace_back(std::make_shared<std::vector<std::byte>>());
  if (chosen->size() < bytes) chosen->resize(bytes);
  return chosen;
}

std::unique_ptr<PendingCollective> HostExecutor::start(const CompiledSchedule& compiled, HostBuffers buffers,
                                                       DataType type, ReduceOp op, uint64_t sequence,
                                                       SumConsumer consume) {
  auto scratch = free_scratch(compiled.schedule().scratch_count * dtype_size(type));
  return std::make_unique<PendingCollective>(transport_, peers_, compiled, buffers, type, op, sequence,
                                             std::move(scratch), std::move(consume));
}

void HostExecutor::run(const CompiledSchedule& compiled, HostBuffers buffers, DataType type, ReduceOp op,
                       uint64_t sequence, Deadline deadline) {
  const size_t scratch_bytes = compiled.schedule().scratch_count * dtype_size(type);
  if (!blocking_call_) {
    blocking_call_ = std::make_unique<PendingCollective>(transport_, peers_, compiled, buffers, type, op, sequence,
                                                         free_scratch(scratch_bytes));
  } else {
    blocking_call_->restart(compiled, buffers, type, op, sequence, free_scratch(scratch_bytes));
  }
  blocking_call_->wait(deadline);
}

}  // namespace cclab
