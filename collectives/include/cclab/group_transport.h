// A view of a transport restricted to a group of its ranks (a "process group"): group rank g is
// global rank members[g]. Schedules built for a Topology of members.size() ranks run on it
// unchanged, so the same algorithms serve a data-parallel group inside a pipeline grid, or a
// tensor-parallel group. It owns nothing: the parent transport carries the messages, and both the
// parent's counters and this view's count them (this view's are the group's traffic alone).
//
// Messages of two groups that share a pair of ranks must differ in their tags: callers keep each
// group's sequence numbers apart (trainers/modes/process_group.h puts a group id in them).
#pragma once

#include <vector>

#include "cclab/transport.h"

namespace cclab {

class GroupTransport : public Transport {
 public:
  /// `members`: distinct global ranks of `parent`, in group-rank order; this rank must be one of them.
  GroupTransport(Transport& parent, std::vector<int> members);

  std::string name() const override { return parent_.name(); }
  std::string wire_to(int peer) const override { return parent_.wire_to(global_rank(peer)); }
  RequestPtr send(int peer, const void* buffer, size_t bytes, uint64_t tag) override;
  RequestPtr recv(int peer, void* buffer, size_t bytes, uint64_t tag) override;
  bool progress() override { return parent_.progress(); }

  /// Global rank of group rank `peer`.
  int global_rank(int peer) const;
  const std::vector<int>& members() const { return members_; }

 private:
  Transport& parent_;
  std::vector<int> members_;
};

}  // namespace cclab
