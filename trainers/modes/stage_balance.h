// How the pipeline-parallel mode (pipeline_parallel.cc) splits the model's layers into stages:
// balanced by measured layer costs, or as --balance gives them. Pure functions, so that tests can
// check the balancing alone.
#pragma once

#include <cstddef>
#include <vector>

namespace cclab::train {

/// The contiguous split of layers with costs `layer_costs` into `stages` non-empty stages that
/// minimises the costliest stage (exact dynamic programming over the split points). Returns
/// stages + 1 boundaries: stage s runs layers [result[s], result[s + 1]). Throws UsageError when
/// there are more stages than layers.
std::vector<size_t> balance_stages(const std::vector<double>& layer_costs, size_t stages);

/// The stage boundaries (as balance_stages returns them) of --balance, the layers of each stage.
/// Throws UsageError unless it has `stages` counts, none of them 0, that add up to `layers`.
std::vector<size_t> given_balance(const std::vector<size_t>& balance, size_t stages, size_t layers);

}  // namespace cclab::train
