// Layers on oneDNN (CPU). One dnnl::engine and one dnnl::stream per process; each layer caches its
// primitives per batch size (the only dimension that changes between calls: the last, partial batch
// of an epoch and evaluation batches get their own).
//
// Threads: Debian's libdnnl is built with the OpenMP (GNU libgomp) CPU runtime, so oneDNN uses as
// many threads as omp_get_max_threads() in the calling thread. set_compute_threads() sets that
// (before the first primitive is created; jit kernels partition work for the count at creation).
#pragma once

#include <memory>
#include <string>

#include "model/layer.h"

namespace cclab::train {

class OnednnBackend : public Backend {
 public:
  std::string name() const override { return "onednn"; }
  std::unique_ptr<Layer> make_layer(const LayerConfig& config) override;
};

/// "2.6.3"
std::string onednn_version();
/// "OpenMP" or "TBB" (how this oneDNN build runs its CPU threads) and the ISA it dispatches to.
std::string onednn_cpu_runtime();
std::string onednn_cpu_isa();

/// Sets the number of compute threads of this process (oneDNN primitives and our own loops).
void set_compute_threads(int threads);
/// What oneDNN will use now.
int compute_threads();

}  // namespace cclab::train
