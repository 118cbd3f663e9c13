#include "transports/node_split/node_split_transport.h"

namespace cclab {

NodeSplitTransport::NodeSplitTransport(std::unique_ptr<Transport> intra, std::unique_ptr<Transport> inter,
                                       std::vector<int> node_of_rank)
    : Transport(intra->rank(), intra->size()),
      intra_(std::move(intra)),
      inter_(std::move(inter)),
      node_of_rank_(std::move(node_of_rank)) {}

Transport& NodeSplitTransport::route(int peer) const {
  check_peer(peer);
  return node_of_rank_[size_t(peer)] == node_of_rank_[size_t(rank())] ? *intra_ : *inter_;
}

RequestPtr NodeSplitTransport::send(int peer, const void* buffer, size_t bytes, uint64_t tag) {
  count_send(peer, bytes);
  return route(peer).send(peer, buffer, bytes, tag);
}

RequestPtr NodeSplitTransport::recv(int peer, void* buffer, size_t bytes, uint64_t tag) {
  count_receive(peer, bytes);
  return route(peer).recv(peer, buffer, bytes, tag);
}

bool NodeSplitTransport::progress() {
  const bool inner = intra_->progress();
  return inter_->progress() || inner;
}

void NodeSplitTransport::shutdown() {
  intra_->shutdown();
  inter_->shutdown();
}

}  // namespace cclab
