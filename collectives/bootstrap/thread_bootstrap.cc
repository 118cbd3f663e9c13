#include "bootstrap/thread_bootstrap.h"

#include <chrono>

#include "cclab/error.h"

namespace cclab {

void ThreadJob::fail_waiting(int rank, const char* what) const {
  if (!abandoned_.empty()) throw Error("rank " + std::to_string(rank) + " stops: " + abandoned_);
  std::string missing;
  for (int r = 0; r < size_; ++r)
    if (!present_[size_t(r)]) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
  throw TimeoutError("rank " + std::to_string(rank) + " waited " + std::to_string(int(timeout_s_)) + " s " + what +
              " for rank(s) " + missing + " (--timeout)");
}

std::vector<std::string> ThreadJob::allgather(int rank, const std::string& mine) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
  std::unique_lock lock(mutex_);
  // Wait until the previous round's readers have all left before reusing the slots.
  if (!changed_.wait_until(lock, deadline,
                           [&] { return !abandoned_.empty() || departed_ == 0 || departed_ == size_; }) ||
      !abandoned_.empty())
    fail_waiting(rank, "for the previous exchange to end");
  if (departed_ == size_) departed_ = 0;
  slots_[rank] = mine;
  present_[size_t(rank)] = true;
  const uint64_t my_generation = generation_;
  if (++arrived_ == size_) {
    result_ = slots_;
    arrived_ = 0;
    present_.assign(size_t(size_), false);
    ++generation_;
    changed_.notify_all();
  } else if (!changed_.wait_until(lock, deadline,
                                  [&] { return !abandoned_.empty() || generation_ != my_generation; }) ||
             generation_ == my_generation) {
    fail_waiting(rank, "in an exchange");
  }
  std::vector<std::string> result = result_;
  if (++departed_ == size_) changed_.notify_all();
  return result;
}

void ThreadJob::abandon(int rank, const std::string& why) {
  std::lock_guard lock(mutex_);
  if (abandoned_.empty()) abandoned_ = "rank " + std::to_string(rank) + " failed: " + why;
  changed_.notify_all();
}

}  // namespace cclab
