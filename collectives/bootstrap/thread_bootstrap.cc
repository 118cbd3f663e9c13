#include "bootstrap/thread_bootstrap.h"

namespace cclab {

std::vector<std::string> ThreadJob::allgather(int rank, const std::string& mine) {
  std::unique_lock lock(mutex_);
  // Wait until the previous round's readers have all left before reusing the slots.
  changed_.wait(lock, [&] { return departed_ == 0 || departed_ == size_; });
  if (departed_ == size_) departed_ = 0;
  slots_[rank] = mine;
  const uint64_t my_generation = generation_;
  if (++arrived_ == size_) {
    result_ = slots_;
    arrived_ = 0;
    ++generation_;
    changed_.notify_all();
  } else {
    changed_.wait(lock, [&] { return generation_ != my_generation; });
  }
  std::vector<std::string> result = result_;
  if (++departed_ == size_) changed_.notify_all();
  return result;
}

}  // namespace cclab
