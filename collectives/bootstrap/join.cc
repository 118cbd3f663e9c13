// Recognizing the launcher that started us and joining its job (DESIGN 3.1).
//
// Environment read here:
//   CCLAB_LOCAL_LAUNCH=1      set by cclab's own launcher (with CCLAB_RANK, CCLAB_WORLD_SIZE,
//                             CCLAB_STORE, CCLAB_TOKEN) -> LaunchKind::local
//   OMPI_COMM_WORLD_SIZE      set by Open MPI's mpirun                    -> LaunchKind::mpi
//   CCLAB_RANK, CCLAB_WORLD_SIZE, CCLAB_STORE=host:port                  -> LaunchKind::env
//     (or SLURM_PROCID, SLURM_NTASKS with CCLAB_STORE; CCLAB_* win over SLURM_*)
//   CCLAB_STORE_BIND_ADDR     env launch: where rank 0's store listens (default 127.0.0.1)
//   CCLAB_TOKEN               the job token every store client presents
#include <cstdlib>
#include <string>

#include "bootstrap/job_token.h"
#include "bootstrap/mpi_bootstrap.h"
#include "bootstrap/store_address.h"
#include "bootstrap/tcp_store_bootstrap.h"
#include "bootstrap/tcp_store_client.h"
#include "bootstrap/tcp_store_server.h"
#include "cclab/deadline.h"
#include "cclab/error.h"
#include "cclab/launch.h"

namespace cclab {
namespace {

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return (value != nullptr && *value != '\0') ? value : nullptr;
}

int int_env(const char* name) {
  const char* value = env(name);
  if (value == nullptr) throw UsageError(std::string(name) + " is not set");
  char* end = nullptr;
  const long number = std::strtol(value, &end, 10);
  if (*end != '\0' || number < 0 || number > (1L << 30))
    throw UsageError(std::string(name) + " must be a non-negative integer, got '" + value + "'");
  return static_cast<int>(number);
}

/// Rank and world size of an env launch: CCLAB_* if set, else Slurm's.
int env_rank() { return env("CCLAB_RANK") ? int_env("CCLAB_RANK") : int_env("SLURM_PROCID"); }
int env_world_size() { return env("CCLAB_WORLD_SIZE") ? int_env("CCLAB_WORLD_SIZE") : int_env("SLURM_NTASKS"); }

std::unique_ptr<TcpStoreBootstrap> join_store(LaunchKind kind, double timeout_s, Deadline deadline) {
  const int rank = env_rank();
  const int size = env_world_size();
  if (size < 1) throw UsageError("the world size must be at least 1");
  if (rank >= size)
    throw UsageError("rank " + std::to_string(rank) + " is outside a world of " + std::to_string(size) + " ranks");
  const StoreAddress store = parse_store_address(env("CCLAB_STORE") ? env("CCLAB_STORE") : "", "CCLAB_STORE");
  // Every rank presents the job's token to the store, so no other process can join, set keys or
  // hold the store's resources. The local launcher makes one; an env launch is given one.
  const char* token_env = env("CCLAB_TOKEN");
  if (token_env == nullptr) {
    if (kind == LaunchKind::local) throw UsageError("CCLAB_TOKEN is not set (cclab's local launcher always sets it)");
    throw UsageError("CCLAB_TOKEN is not set: give every rank of an env launch the same secret, e.g. "
                     "export CCLAB_TOKEN=$(openssl rand -hex 16), so that no other process can join the rendezvous");
  }
  const std::string token = token_env;
  if (token.size() < kShortestToken)
    throw UsageError("CCLAB_TOKEN has " + std::to_string(token.size()) + " characters; a token needs at least " +
                     std::to_string(kShortestToken) + " (e.g. openssl rand -hex 16)");

  std::unique_ptr<TcpStoreServer> server;
  StoreAddress connect_to = store;
  if (kind == LaunchKind::env && rank == 0) {
    if (store.port == 0) throw UsageError("CCLAB_STORE needs a fixed port for rank 0 to listen on, got port 0");
    const std::string bind = env("CCLAB_STORE_BIND_ADDR") ? env("CCLAB_STORE_BIND_ADDR") : "127.0.0.1";
    server = std::make_unique<TcpStoreServer>(token, bind, store.port);
    // Rank 0 reaches its own server directly: CCLAB_STORE may name an interface it does not listen on.
    connect_to = server->local_address();
  }
  std::unique_ptr<TcpStoreClient> client;
  try {
    client = std::make_unique<TcpStoreClient>(connect_to, token, deadline, TcpStoreClient::reply_grace_for(timeout_s));
  } catch (const TimeoutError& error) {
    throw TimeoutError("rendezvous timed out after " + format_seconds(timeout_s) + " s: " + error.what());
  }
  return std::make_unique<TcpStoreBootstrap>(std::move(client), rank, size,
                                             kind == LaunchKind::local ? "local" : "env", timeout_s,
                                             std::move(server));
}

}  // namespace

LaunchKind detect_launch() {
  if (const char* local = env("CCLAB_LOCAL_LAUNCH"); local != nullptr && std::string(local) == "1")
    return LaunchKind::local;
  if (env("OMPI_COMM_WORLD_SIZE")) return LaunchKind::mpi;
  const bool cclab_rank = env("CCLAB_RANK"), cclab_size = env("CCLAB_WORLD_SIZE"), store = env("CCLAB_STORE");
  if (cclab_rank || cclab_size) {
    // Half a CCLAB_* configuration is a mistake, and silently running one rank alone would hide it.
    if (!(cclab_rank && cclab_size && store))
      throw UsageError("an env launch needs CCLAB_RANK, CCLAB_WORLD_SIZE and CCLAB_STORE together; missing " +
                       std::string(!cclab_rank ? "CCLAB_RANK" : !cclab_size ? "CCLAB_WORLD_SIZE" : "CCLAB_STORE"));
    return LaunchKind::env;
  }
  // Slurm variables alone do not make us a rank: a batch script that runs `cclab -n 4` has them too.
  if (store && env("SLURM_PROCID") && env("SLURM_NTASKS")) return LaunchKind::env;
  return LaunchKind::none;
}

int launcher_world_size() {
  switch (detect_launch()) {
    case LaunchKind::none:
      return 0;
    case LaunchKind::mpi:
      return int_env("OMPI_COMM_WORLD_SIZE");
    case LaunchKind::local:
    case LaunchKind::env:
      return env_world_size();
  }
  return 0;
}

std::unique_ptr<Bootstrap> join_job(const std::string& fingerprint, double timeout_s) {
  const Deadline deadline = Deadline::after(timeout_s);
  const LaunchKind kind = detect_launch();
  std::unique_ptr<Bootstrap> bootstrap;
  std::vector<std::string> fingerprints;
  switch (kind) {
    case LaunchKind::none:
      throw Error("join_job: this process was not started by a launcher (no CCLAB_*, OMPI_* or Slurm variables)");
    case LaunchKind::mpi:
      bootstrap = std::make_unique<MpiBootstrap>(timeout_s);
      fingerprints = bootstrap->allgather(fingerprint);
      break;
    case LaunchKind::local:
    case LaunchKind::env: {
      auto store_bootstrap = join_store(kind, timeout_s, deadline);
      // Connecting and the first exchange share one deadline: together they are the rendezvous.
      fingerprints = store_bootstrap->allgather(fingerprint, deadline, timeout_s);
      bootstrap = std::move(store_bootstrap);
      break;
    }
  }
  for (int r = 1; r < bootstrap->size(); ++r)
    if (fingerprints[r] != fingerprints[0])
      throw UsageError("rank " + std::to_string(r) + " was started with different arguments than rank 0");
  return bootstrap;
}

}  // namespace cclab
