// Ranks as threads of one process, for unit tests: a Bootstrap over shared memory.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cclab/bootstrap.h"

namespace cclab {

/// State shared by the threads of one test "job".
class ThreadJob {
 public:
  explicit ThreadJob(int size) : size_(size), slots_(size) {}
  int size() const { return size_; }
  std::vector<std::string> allgather(int rank, const std::string& mine);

 private:
  int size_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> slots_;
  int arrived_ = 0;
  int departed_ = 0;
  uint64_t generation_ = 0;
  std::vector<std::string> result_;
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
