#include "cclab/deadline.h"

#include <sched.h>

#include <thread>

namespace cclab {

void Backoff::idle() {
  // A few hundred empty polls cost well under a microsecond each; past that the peer is slow
  // and the core is better given to it (essential when ranks outnumber cores).
  constexpr unsigned kSpinRounds = 256;
  ++idle_rounds_;
  if (always_yield_ || idle_rounds_ > kSpinRounds) sched_yield();
}

}  // namespace cclab
