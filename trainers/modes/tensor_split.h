// Tensor-parallel machinery shared by the tensor and hybrid modes (DESIGN 3.6, Megatron-LM): how a
// run of layers splits over the t ranks of a group, and the runner that executes the split layers
// with Megatron's f and g collectives between them. Implemented in tensor_parallel.cc.
//
// The split (split_tensor_parallel) walks the layers with parameters in order:
// Slices need not be equal: t parts of n outputs get n/t or n/t + 1 each (Slice::piece).
//   - a layer with at least t outputs, followed (only relu / max pooling in between) by another
//     layer with parameters, forms a PAIR with it: the first is column-split (a slice of its output
//     channels or features), the relu/pool in between run on that channel slice, the second is
//     row-split (the same slice of its input channels). Forward: allreduce of the row layer's output
//     (g). Backward: allreduce of the column layer's input gradient (f), only when some layer before
//     it has parameters (otherwise nobody needs that gradient and it is not computed at all).
//   - a leftover layer with at least t outputs (with the spec grammar only the last fc: every other
//     one has a partner) is column-split alone; relu/pool after it run on its slice and the whole
//     output is gathered at the end of the run (allgather of blocks padded to the largest slice, then
//     interleave: with NHWC a part's channels are strided within each sample). Backward takes this rank's slice of the
//     replicated output gradient; the input gradient is a partial sum again (f).
//   - any other layer is replicated: every rank runs it whole on identical inputs and gets identical
//     gradients, so nothing is exchanged for it.
// Outside the split regions every activation and gradient is replicated, with identical bits on every
// rank (the ring allreduce hands every rank the same result), so the output of the run is too.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "modes/mode.h"
#include "modes/process_group.h"

namespace cclab::train {

/// Process group ids of the phases (distinct from data mode's 1), so each group's counters are one
/// phase's bytes.
inline constexpr unsigned kForwardGroup = 11, kBackwardGroup = 12, kGradSyncGroup = 13;

/// What one layer instance is in a tensor-parallel split.
enum class TensorRole {
  replicated,       // whole on every rank, no communication
  column,           // output slice; its row partner follows
  on_slice,         // relu / max pooling running on the channel slice of a column layer
  row,              // input slice; its output is allreduced (g)
  gathered_column,  // output slice without a partner; gathered at the end of the run
};

struct TensorSplit {
  std::vector<LayerConfig> layers;  // every layer of the model; those in [first, end) edited for `part`
  std::vector<TensorRole> roles;    // per layer; replicated before `first`
  size_t first = 0;                 // where the tensor-parallel run starts (hybrid: the first fc)
  size_t part = 0, parts = 1;
  ActivationShape whole_output;  // the last layer's unsplit output
};

/// Splits layers [first, end) of a whole model's `layers` for part `part` of `parts`, as above.
TensorSplit split_tensor_parallel(std::vector<LayerConfig> layers, size_t first, size_t part, size_t parts);

/// "conv3x3:8[out 0:4] column | relu[in 0:4] | ... row, allreduce | ... replicated" for [first, end).
std::string describe_tensor_split(const TensorSplit& split);

/// Sum and sum of magnitudes of a tensor-parallel rank's parameters, counting every parameter of the
/// whole model once over the ranks: split layers on every rank, replicated ones on part 0 only.
std::pair<double, double> tensor_parameter_sums(const Model& model, const TensorSplit& split);

/// Time inside blocking collectives and their predicted bytes during one step (or evaluation).
struct CommTally {
  /// Evaluation passes false: its traffic is not part of ParallelMode::sent_bytes().
  bool training = true;
  double comm_s = 0;
  PhaseCounts predicted;
  PhaseCounts textbook;  // the same calls by DESIGN 3.7's formulas
};

/// A process group that carries the collectives of one phase (forward, backward or grad_sync, DESIGN
/// 3.5), so its counters are that phase's bytes. Every call is timed into the caller's tally and, in
/// training, adds the simulator's count of its bytes to the tally's phase.
class PhaseGroup {
 public:
  PhaseGroup(Comm& comm, std::vector<int> members, unsigned id, double PhaseCounts::*phase);

  ProcessGroup& group() { return group_; }
  const ProcessGroup& group() const { return group_; }
  int rank() const { return group_.rank(); }
  int size() const { return group_.size(); }

  void allreduce(float* data, size_t count, CommTally& tally);
  void allgather(const float* block, float* whole, size_t block_count, CommTally& tally);
  void reduce_scatter(const float* whole, float* block, size_t block_count, CommTally& tally);

 private:
  template <typename Call>
  void run(Collective collective, size_t count, CommTally& tally, Call&& call);

  ProcessGroup group_;
  double PhaseCounts::*phase_;
};

/// Runs layers [split.first, end) of a Model built from split.layers, tensor-parallel over the
/// groups' ranks, on batches of up to max_batch samples held in an Activations of that model (whose
/// activation(first) holds the run's input, the same on every rank).
class TensorParallelRun {
 public:
  TensorParallelRun(Model& model, const TensorSplit& split, PhaseGroup& forward, PhaseGroup& backward,
                    size_t max_batch);

  /// Forward of the run; returns its whole output (batch x whole_output elements, the same bits on
  /// every rank): the model's output, or the gathered copy after a gathered column layer.
  const float* forward(Activations& activations, size_t batch, bool training, CommTally& tally);
  /// Where the caller writes the gradient w.r.t. forward()'s whole output before backward().
  float* output_gradient(Activations& activations);
  /// Backward of the run (parameter gradients overwritten). When computes_input_gradient(),
  /// activations.gradient(first) gets the gradient w.r.t. the run's input: a partial sum over the
  /// ranks when input_gradient_is_partial() (the first layer is column-split: the caller applies
  /// f), else whole.
  void backward(Activations& activations, size_t batch, CommTally& tally);

  bool computes_input_gradient() const { return input_gradient_needed(first_); }
  bool input_gradient_is_partial() const;

 private:
  // Whether the gradient w.r.t. layer i's input is needed: some layer before i has parameters.
  bool input_gradient_needed(size_t layer) const;
  size_t per_sample(size_t boundary) const;  // elements of activation(boundary) per sample

  Model& model_;
  const TensorSplit& split_;
  PhaseGroup &forward_, &backward_;
  size_t first_;
  // Forward runs end after each row layer (allreduce of its output) and at the model's end.
  std::vector<size_t> row_ends_;
  // Backward runs start at each column layer whose input gradient is allreduced (f), and at first_.
  std::vector<size_t> backward_starts_;  // descending
  size_t gathered_column_layer() const;  // the last layer with role gathered_column

  bool gathered_ = false;
  // Gathered column layer only: its whole output channels; this part's output padded to the largest
  // piece's size (the allgather moves blocks of one size) and every part's block; the interleaved
  // whole output and its gradient.
  Slice gathered_channels_;
  FloatBuffer gather_send_, gather_blocks_, whole_output_, whole_output_gradient_;
};

}  // namespace cclab::train
