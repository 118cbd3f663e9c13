#include "progress.h"

#include <unistd.h>

#include <cstdio>

namespace cclab {

ProgressLine::ProgressLine(bool wanted)
    : enabled_(wanted && isatty(STDERR_FILENO) == 1), started_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { clear(); }

void ProgressLine::show(const std::string& text) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());  // to the line's start, erase it, draw
  std::fflush(stderr);
}

void ProgressLine::show(const std::string& text, double fraction_done) {
  if (!enabled_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (fraction_done <= 0 || elapsed < 0.5) return show(text);
  const double left = elapsed * (1 - fraction_done) / fraction_done;
  char eta[64];
  const long seconds = long(left + 0.5);
  if (seconds < 60)
    std::snprintf(eta, sizeof eta, "  ETA %ld s", seconds);
  else
    std::snprintf(eta, sizeof eta, "  ETA %ld min %02ld s", seconds / 60, seconds % 60);
  show(text + eta);
}

void ProgressLine::clear() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace cclab
