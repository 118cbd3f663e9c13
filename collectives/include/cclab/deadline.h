// Deadlines for every wait, the poll loop that honours them, and how a wait's length reads in
// the message of a wait that gave up.
#pragma once

#include <chrono>
#include <string>

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

/// `seconds` as timeout messages print them: "60", "0.5", "1e+03".
std::string format_seconds(double seconds);

/// Spins a few rounds and then yields the core; when ranks outnumber cores, always yields.
/// Call `idle()` each time a poll found nothing to do, and ask `expired(deadline)` before it.
class Backoff {
 public:
  explicit Backoff(bool always_yield) : always_yield_(always_yield) {}
  void idle();
  void reset() { idle_rounds_ = 0; }
  /// Whether `deadline` has passed, reading the clock only every few spinning rounds (a read costs
  /// about as much as a poll that finds nothing) and on every round that yields.
  bool expired(const Deadline& deadline) const {
    constexpr unsigned kRoundsPerClockRead = 16;
    return (always_yield_ || idle_rounds_ % kRoundsPerClockRead == 0 || idle_rounds_ > kSpinRounds) &&
           deadline.passed();
  }

 private:
  // A few hundred empty polls cost well under a microsecond each; past that the peer is slow
  // and the core is better given to it (essential when ranks outnumber cores).
  static constexpr unsigned kSpinRounds = 256;
  bool always_yield_;
  unsigned idle_rounds_ = 0;
};

}  // namespace cclab
