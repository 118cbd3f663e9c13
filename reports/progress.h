// A status line for people at a terminal (DESIGN 3.9): where a sweep or a training run is and
// when it will end. Only when stderr is a terminal; logs and pipes get none of it.
#pragma once

#include <chrono>
#include <string>

namespace cclab {

class ProgressLine {
 public:
  /// Shows nothing unless `wanted` (e.g. on rank 0) and stderr is a terminal.
  explicit ProgressLine(bool wanted);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool enabled() const { return enabled_; }
  /// Redraws the line with `text` (at most ten times a second; the first time at once).
  void show(const std::string& text);
  /// `text` and the time left, estimated from the fraction done so far (0 to 1).
  void show(const std::string& text, double fraction_done);
  /// Erases the line, so what is printed next starts on a clean one.
  void clear();

 private:
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point started_, last_;
};

}  // namespace cclab
