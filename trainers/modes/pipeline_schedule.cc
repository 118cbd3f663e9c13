#include "modes/pipeline_schedule.h"

#include <algorithm>

#include "cclab/error.h"

namespace cclab::train {

std::vector<PipelineAction> pipeline_schedule(const std::string& schedule, size_t stage, size_t stages,
                                              size_t micro_batches) {
  if (stage >= stages) throw Error("stage " + std::to_string(stage) + " of " + std::to_string(stages));
  using Kind = PipelineAction::Kind;
  std::vector<PipelineAction> actions;
  if (schedule == "gpipe") {
    // GPipe: every micro-batch's forward, then the backwards, last micro-batch first (the next stage
    // finishes its forwards with it, so its gradient is the first to come back). All m micro-batches'
    // activations are alive at the turn.
    for (size_t i = 0; i < micro_batches; ++i) actions.push_back({Kind::forward, i});
    for (size_t i = micro_batches; i-- > 0;) actions.push_back({Kind::backward, i});
    return actions;
  }
  if (schedule == "1f1b") {
    // 1F1B (PipeDream-Flush, Narayanan et al. 2021). Warm-up: stage s runs stages - s - 1 forwards,
    // which is how many micro-batches are still ahead of it in the pipeline when the last stage
    // starts its first backward. Steady state: each forward of micro-batch warm_up + i is followed by
    // the backward of micro-batch i, whose gradient the next stage sends back just in time. Cooldown:
    // the backwards of the last warm_up micro-batches. Backwards run in micro-batch order, so at most
    // stages - s micro-batches are in flight on stage s (GPipe: all m).
    const size_t warm_up = std::min(stages - stage - 1, micro_batches);
    for (size_t i = 0; i < warm_up; ++i) actions.push_back({Kind::forward, i});
    for (size_t i = 0; i + warm_up < micro_batches; ++i) {
      actions.push_back({Kind::forward, warm_up + i});
      actions.push_back({Kind::backward, i});
    }
    for (size_t i = micro_batches - warm_up; i < micro_batches; ++i) actions.push_back({Kind::backward, i});
    return actions;
  }
  throw UsageError("--schedule must be gpipe or 1f1b, not \"" + schedule + "\"");
}

size_t max_in_flight(const std::vector<PipelineAction>& actions) {
  size_t in_flight = 0, most = 0;
  for (const PipelineAction& action : actions) {
    if (action.kind == PipelineAction::Kind::forward)
      most = std::max(most, ++in_flight);
    else
      --in_flight;
  }
  return most;
}

std::vector<MicroBatch> split_micro_batches(size_t samples, size_t micro_batches) {
  const size_t count = std::min(samples, micro_batches);
  std::vector<MicroBatch> result;
  for (size_t i = 0; i < count; ++i) {
    const size_t begin = i * samples / count, end = (i + 1) * samples / count;
    result.push_back({begin, end - begin});
  }
  return result;
}

size_t largest_micro_batch(const std::vector<MicroBatch>& micro_batches) {
  size_t largest = 0;
  for (const MicroBatch& micro : micro_batches) largest = std::max(largest, micro.size);
  return largest;
}

}  // namespace cclab::train
