// Plain C++ loops for every layer kind, written for obviousness, not speed. They exist for tests
// only (not linked into cclab): the oneDNN layers are checked against them, and they are checked
// against finite differences.
#pragma once

#include "model/layer.h"

namespace cclab::train {

class ReferenceBackend : public Backend {
 public:
  std::string name() const override { return "reference"; }
  std::unique_ptr<Layer> make_layer(const LayerConfig& config) override;
};

}  // namespace cclab::train
