#include "cclab/group_transport.h"

#include <algorithm>

#include "cclab/error.h"

namespace cclab {
namespace {

int group_rank_of(const Transport& parent, const std::vector<int>& members) {
  for (size_t g = 0; g < members.size(); ++g) {
    if (members[g] < 0 || members[g] >= parent.size())
      throw UsageError("group member " + std::to_string(members[g]) + " is not a rank of " +
                       std::to_string(parent.size()));
    if (std::count(members.begin(), members.end(), members[g]) != 1)
      throw UsageError("rank " + std::to_string(members[g]) + " appears twice in a group");
  }
  const auto mine = std::find(members.begin(), members.end(), parent.rank());
  if (mine == members.end())
    throw UsageError("rank " + std::to_string(parent.rank()) + " is not a member of its own group");
  return int(mine - members.begin());
}

}  // namespace

GroupTransport::GroupTransport(Transport& parent, std::vector<int> members)
    : Transport(group_rank_of(parent, members), int(members.size())), parent_(parent), members_(std::move(members)) {
  set_yield_when_idle(parent_.yield_when_idle());
  traffic().also_count_direct_traffic_in(parent_.traffic(), members_);
}

int GroupTransport::global_rank(int peer) const {
  check_peer(peer);
  return members_[size_t(peer)];
}

RequestPtr GroupTransport::send(int peer, const void* buffer, size_t bytes, uint64_t tag) {
  const int global = global_rank(peer);
  count_send(peer, bytes);
  return parent_.send(global, buffer, bytes, tag);
}

RequestPtr GroupTransport::recv(int peer, void* buffer, size_t bytes, uint64_t tag) {
  const int global = global_rank(peer);
  count_receive(peer, bytes);
  return parent_.recv(global, buffer, bytes, tag);
}

}  // namespace cclab
