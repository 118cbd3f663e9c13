// The pipeline schedules (GPipe and 1F1B) of the pipeline-parallel mode (pipeline_parallel.cc) and
// the cut of a shard into micro-batches: pure functions, so that tests can check them alone.
//
// A pipeline of `stages` ranks runs consecutive layers each; a global batch's shard is cut into
// micro-batches that flow through the stages, so that stages work on different micro-batches at
// the same time. The schedule is the order in which ONE stage runs the forward and backward passes
// of its micro-batches in a step; every stage's order must be consistent with its neighbours' (a
// forward needs the previous stage's output, a backward the next stage's input gradient).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cclab::train {

/// One entry of a stage's schedule: the forward or backward pass of one micro-batch.
struct PipelineAction {
  enum class Kind { forward, backward };
  Kind kind = Kind::forward;
  size_t micro_batch = 0;
  bool operator==(const PipelineAction&) const = default;
};

/// The actions of stage `stage` of `stages` for `micro_batches` micro-batches in one training step.
/// "gpipe": every forward, then every backward in reverse order. "1f1b" (PipeDream-Flush): warm-up
/// forwards, then one forward / one backward alternately, then the remaining backwards (at most
/// stages - stage micro-batches in flight). Throws UsageError for another schedule name.
std::vector<PipelineAction> pipeline_schedule(const std::string& schedule, size_t stage, size_t stages,
                                              size_t micro_batches);

/// Most micro-batches whose forward has run and whose backward has not, at any point of `actions`.
size_t max_in_flight(const std::vector<PipelineAction>& actions);

/// Samples [offset, offset + size) of a replica's shard.
struct MicroBatch {
  size_t offset = 0, size = 0;
};

/// `samples` cut into min(samples, micro_batches) contiguous, nearly equal, non-empty micro-batches.
/// Every stage of a replica sees the same shard size, so all of them agree on the cut (a small last
/// batch just gives fewer micro-batches; an empty shard gives none).
std::vector<MicroBatch> split_micro_batches(size_t samples, size_t micro_batches);

/// The size of the largest of `micro_batches` (0 for none).
size_t largest_micro_batch(const std::vector<MicroBatch>& micro_batches);

}  // namespace cclab::train
