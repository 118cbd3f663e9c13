// Two transports behind one: peers on this rank's node go through `intra`, the others through
// `inter` (`--inter-transport`), so a hierarchical algorithm can use shared memory inside a node
// and another transport between nodes. Counters here cover both.
#pragma once

#include <memory>
#include <vector>

#include "cclab/transport.h"

namespace cclab {

class NodeSplitTransport : public Transport {
 public:
  NodeSplitTransport(std::unique_ptr<Transport> intra, std::unique_ptr<Transport> inter, std::vector<int> node_of_rank);
  std::string name() const override { return intra_->name() + "+" + inter_->name(); }
  std::string wire_to(int peer) const override { return route(peer).wire_to(peer); }
  RequestPtr send(int peer, const void* buffer, size_t bytes, uint64_t tag) override;
  RequestPtr recv(int peer, void* buffer, size_t bytes, uint64_t tag) override;
  bool progress() override;
  void shutdown() override;

 private:
  Transport& route(int peer) const;
  std::unique_ptr<Transport> intra_, inter_;
  std::vector<int> node_of_rank_;
};

}  // namespace cclab
