// Deadlines for every wait, and the poll loop that honours them.
#pragma once

#include <chrono>

namespace cclab {

using Clock = std::chrono::steady_clock;

/// A point in time after which a wait gives up. `Deadline::after(seconds)`.
struct Deadline {
  Clock::time_point when;
  static Deadline after(double seconds) {
    return {Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds))};
  }
  bool passed() const { return Clock::now() >= when; }
};

/// Spins a few rounds and then yields the core; when ranks outnumber cores, always yields.
/// Call `idle()` each time a poll found nothing to do.
class Backoff {
 public:
  explicit Backoff(bool always_yield) : always_yield_(always_yield) {}
  void idle();
  void reset() { idle_rounds_ = 0; }

 private:
  bool always_yield_;
  unsigned idle_rounds_ = 0;
};

}  // namespace cclab
