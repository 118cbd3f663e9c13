// The Bootstrap of the local and env launchers: every rank's allgather goes through the
// rendezvous store, so ranks need nothing but the store's address and the job token to find each
// other.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bootstrap/tcp_store_client.h"
#include "bootstrap/tcp_store_server.h"
#include "cclab/bootstrap.h"
#include "cclab/deadline.h"

namespace cclab {

/// Bootstrap over a TcpStoreClient: allgather round r writes "ag/<r>/<rank>" and waits for every
/// rank's key of that round. Optionally owns the server (rank 0 under the env launcher).
class TcpStoreBootstrap : public Bootstrap {
 public:
  /// `timeout_s` bounds every allgather; `launcher` is what launcher() reports ("local", "env").
  TcpStoreBootstrap(std::unique_ptr<TcpStoreClient> client, int rank, int size, std::string launcher, double timeout_s,
                    std::unique_ptr<TcpStoreServer> hosted_server = nullptr);
  ~TcpStoreBootstrap() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::vector<std::string> allgather(const std::string& mine) override;
  std::string launcher() const override { return launcher_; }

  /// allgather with an explicit deadline (join_job's rendezvous counts connecting too);
  /// `timeout_s` is only what the TimeoutError message reports.
  std::vector<std::string> allgather(const std::string& mine, Deadline deadline, double timeout_s);

 private:
  // Declared first so it is destroyed last: our own client must disconnect before the server goes.
  std::unique_ptr<TcpStoreServer> hosted_server_;
  std::unique_ptr<TcpStoreClient> client_;
  int rank_;
  int size_;
  std::string launcher_;
  double timeout_s_;
  uint64_t round_ = 0;
};

}  // namespace cclab
