#include "bootstrap/thread_ranks.h"

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/thread_bootstrap.h"

namespace cclab {

ThreadRanksOutcome run_ranks_as_threads(int ranks, const CommOptions& options, const std::function<bool(Comm&)>& body) {
  auto job = std::make_shared<ThreadJob>(ranks, options.timeout_s);
  std::mutex mutex;
  ThreadRanksOutcome outcome;
  std::vector<std::thread> threads;
  // The first to fail failed on its own: the others fail only after it abandons the job.
  auto fail = [&](int rank, const std::string& why) {
    {
      std::lock_guard lock(mutex);
      if (!outcome.failure) outcome.failure = std::current_exception(), outcome.failed_rank = rank;
    }
    job->abandon(rank, why);
  };
  for (int rank = 0; rank < ranks; ++rank)
    threads.emplace_back([&, rank] {
      try {
        std::unique_ptr<Comm> comm = Comm::create(std::make_unique<ThreadBootstrap>(job, rank), options);
        const bool passed = body(*comm);
        comm->transport().shutdown();  // collective: nobody tears down while a peer still needs it
        std::lock_guard lock(mutex);
        outcome.passed &= passed;
      } catch (const std::exception& error) {
        fail(rank, error.what());
      } catch (...) {
        fail(rank, "an exception of unknown type");
      }
    });
  for (std::thread& thread : threads) thread.join();
  if (outcome.failure) outcome.passed = false;
  return outcome;
}

}  // namespace cclab
