#include "cclab/deadline.h"

#include <sched.h>

#include <cstdio>
#include <thread>

namespace cclab {

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
}

void Backoff::idle() {
  ++idle_rounds_;
  if (always_yield_ || idle_rounds_ > kSpinRounds) sched_yield();
}

}  // namespace cclab
