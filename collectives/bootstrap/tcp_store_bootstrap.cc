#include "bootstrap/tcp_store_bootstrap.h"

#include <algorithm>
#include <exception>

#include "cclab/error.h"

namespace cclab {
namespace {

/// "rank 3", "ranks 2, 3", "ranks 0-5, 9": runs of three or more collapse into a range.
std::string describe_ranks(const std::vector<int>& ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (i > 0) text += ", ";
    if (j - i >= 2) {
      text += std::to_string(ranks[i]) + "-" + std::to_string(ranks[j]);
      i = j + 1;
    } else {
      text += std::to_string(ranks[i]);
      ++i;
    }
  }
  return text;
}

std::string round_prefix(uint64_t round) { return "ag/" + std::to_string(round) + "/"; }

}  // namespace

TcpStoreBootstrap::TcpStoreBootstrap(std::unique_ptr<TcpStoreClient> client, int rank, int size, std::string launcher,
                                     double timeout_s, std::unique_ptr<TcpStoreServer> hosted_server)
    : hosted_server_(std::move(hosted_server)),
      client_(std::move(client)),
      rank_(rank),
      size_(size),
      launcher_(std::move(launcher)),
      timeout_s_(timeout_s) {
  if (size < 1 || rank < 0 || rank >= size)
    throw UsageError("rank " + std::to_string(rank) + " is outside a world of " + std::to_string(size));
}

TcpStoreBootstrap::~TcpStoreBootstrap() {
  client_.reset();
  // Rank 0 hosting the store may finish first while the others still collect the last round's reply.
  // Keep serving until every connected rank has hung up (they do when their bootstrap goes, or
  // their process ends), but never longer than one timeout. After a successful allgather every rank
  // has connected, so nobody is left out by not waiting for ranks that never connected.
  // A bootstrap destroyed while an exception unwinds belongs to a failed rank: the job is over, and a
  // peer behind a dead link could never hang up, so waiting would only hold the failure back.
  if (hosted_server_ && std::uncaught_exceptions() == 0)
    hosted_server_->wait_for_clients_to_leave(Deadline::after(timeout_s_));
}

std::vector<std::string> TcpStoreBootstrap::allgather(const std::string& mine) {
  return allgather(mine, Deadline::after(timeout_s_), timeout_s_);
}

std::vector<std::string> TcpStoreBootstrap::allgather(const std::string& mine, Deadline deadline, double timeout_s) {
  const uint64_t round = round_++;
  const std::string prefix = round_prefix(round);
  client_->set(prefix + std::to_string(rank_), mine);
  std::vector<std::string> keys;
  keys.reserve(size_);
  for (int r = 0; r < size_; ++r) keys.push_back(prefix + std::to_string(r));
  auto result = client_->wait_all(keys, deadline);
  if (!result.missing.empty()) {
    std::vector<int> missing(result.missing.begin(), result.missing.end());
    std::sort(missing.begin(), missing.end());
    const std::string who = describe_ranks(missing);
    if (round == 0)
      throw TimeoutError("rendezvous timed out after " + format_seconds(timeout_s) + " s: " + who + " never arrived");
    throw TimeoutError("bootstrap allgather (round " + std::to_string(round) + ") timed out after " +
                       format_seconds(timeout_s) + " s: " + who + " did not arrive");
  }
  // Every rank has now written its key for this round, which it does only after reading all of the
  // previous round, so nobody needs our previous key any more: delete it to keep the store small.
  if (round > 0) client_->erase(round_prefix(round - 1) + std::to_string(rank_));
  return std::move(result.values);
}

}  // namespace cclab
