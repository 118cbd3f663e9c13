// Pipeline-parallel training (GPipe and 1F1B) and the data x pipeline grid: the pure parts of the
// mode, exposed for unit tests. make_pipeline_parallel() (mode.h) builds the mode itself.
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

/// The contiguous split of layers with costs `layer_costs` into `stages` non-empty stages that
/// minimises the costliest stage (exact dynamic programming over the split points). Returns
/// stages + 1 boundaries: stage s runs layers [result[s], result[s + 1]). Throws UsageError when
/// there are more stages than layers.
std::vector<size_t> balance_stages(const std::vector<double>& layer_costs, size_t stages);

}  // namespace cclab::train
