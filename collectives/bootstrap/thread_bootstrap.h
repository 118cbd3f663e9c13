// Ranks as threads of one process: a Bootstrap over shared memory. The bench runs device-loopback
// jobs this way (ranks sharing one GPU), and unit tests run code that takes a Comm.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cclab/bootstrap.h"

namespace cclab {

/// State shared by the threads of one job. Every wait ends by the job's timeout, or as soon as a
/// rank has given up (abandon), with an Error that names the ranks it waited for.
class ThreadJob {
 public:
  explicit ThreadJob(int size, double timeout_s = 60)
      : size_(size), timeout_s_(timeout_s), slots_(size_t(size)), present_(size_t(size), false) {}
  int size() const { return size_; }
  std::vector<std::string> allgather(int rank, const std::string& mine);
  /// Rank `rank` failed (`why`): the others' waits end now instead of at the timeout.
  void abandon(int rank, const std::string& why);

 private:
  [[noreturn]] void fail_waiting(int rank, const char* what) const;  // mutex_ held

  int size_;
  double timeout_s_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> slots_;
  std::vector<bool> present_;  // who has arrived in the current round
  int arrived_ = 0;
  int departed_ = 0;
  uint64_t generation_ = 0;
  std::vector<std::string> result_;
  std::string abandoned_;  // "rank R: why" of the first rank that gave up; "" while none has
};

class ThreadBootstrap : public Bootstrap {
 public:
  ThreadBootstrap(std::shared_ptr<ThreadJob> job, int rank) : job_(std::move(job)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return job_->size(); }
  std::vector<std::string> allgather(const std::string& mine) override { return job_->allgather(rank_, mine); }
  std::string launcher() const override { return "threads"; }

 private:
  std::shared_ptr<ThreadJob> job_;
  int rank_;
};

}  // namespace cclab
