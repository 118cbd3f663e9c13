// Chrome trace events (`--trace FILE`, DESIGN 3.9): spans each rank records while tracing is on,
// written as one JSON file in the Trace Event Format that Perfetto (ui.perfetto.dev, offline too)
// and chrome://tracing open. A rank is a process ("pid" = rank); its spans nest by time on one
// track. The category says what kind of time a span is: "compute", "comm", "idle", "collective",
// "send", "recv", "reduce", "copy", "step".
//
// Instrumented code asks active_trace() for the thread's recorder and records nothing without
// one, so code that is not being traced pays one thread_local read per span.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cclab {

class Bootstrap;

struct TraceEvent {
  std::string name;
  std::string category;
  double start_us = 0, duration_us = 0;  // from the recorder's origin
  std::string args;                      // members of the event's "args" object, JSON: "\"peer\": 1" or ""
};

class TraceRecorder {
 public:
  /// `ranks`: the job's size, which bounds the events a rank keeps (the file gathers every rank's).
  /// `schedule_steps`: also record each send, receive, reduction and copy of hand-written
  /// collectives (the bench), not only the spans around them (the trainers).
  TraceRecorder(int rank, int ranks, bool schedule_steps);

  int rank() const { return rank_; }
  bool schedule_steps() const { return schedule_steps_; }
  /// Microseconds since the origin, on the steady clock.
  double now_us() const;
  /// Moves the origin to now. Called by every rank right after a barrier, so the ranks' zeros agree
  /// to within the barrier's skew (clocks of different hosts are never compared).
  void align();

  /// Records [start_us, end_us]; events past the cap are counted, not kept.
  void add(std::string_view category, std::string_view name, double start_us, double end_us, std::string args = {});
  /// Marks what no span covers: within [start_us, end_us], every gap between the spans recorded
  /// since event `first_event` (transfers aside, which run beside the work) becomes a span of its
  /// own, e.g. the idle time of a training step.
  void add_gaps(size_t first_event, double start_us, double end_us, std::string_view category, std::string_view name);
  const std::vector<TraceEvent>& events() const { return events_; }
  size_t dropped() const { return dropped_; }

 private:
  int rank_;
  bool schedule_steps_;
  size_t max_events_;
  size_t dropped_ = 0;
  long long origin_ns_ = 0;
  std::vector<TraceEvent> events_;
};

/// The recorder active on this thread, or null when nothing is traced.
TraceRecorder* active_trace();

/// Makes `recorder` the thread's active recorder while it lives (null: none); restores the previous one.
class ActiveTrace {
 public:
  explicit ActiveTrace(TraceRecorder* recorder);
  ~ActiveTrace();
  ActiveTrace(const ActiveTrace&) = delete;
  ActiveTrace& operator=(const ActiveTrace&) = delete;

 private:
  TraceRecorder* previous_;
};

/// A span from construction to destruction on the active recorder; does nothing without one.
/// `category` and `name` must outlive the span (string literals); details go in arg().
class TraceSpan {
 public:
  TraceSpan(std::string_view category, std::string_view name);
  ~TraceSpan();
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

  explicit operator bool() const { return recorder_ != nullptr; }
  /// Adds "key": value to the span's args (only call when tracing: check the span first).
  void arg(std::string_view key, double value);
  void arg(std::string_view key, std::string_view value);

 private:
  TraceRecorder* recorder_;
  std::string_view category_, name_;
  double start_us_ = 0;
  std::string args_;
};

/// "key": value as a member of a JSON object, for TraceRecorder::add's args.
std::string trace_arg(std::string_view key, double value);
std::string trace_arg(std::string_view key, std::string_view value);

/// Collective (`bootstrap` null: a one-process run): gathers every rank's events to rank 0, which writes `path`
/// (through a temporary file renamed into place, so a failed run leaves no half-written trace); `command` (the run's
/// argv) is kept in the file. Returns, on rank 0, the line that tells the user where the trace is
/// and what it holds; "" elsewhere.
std::string write_trace(Bootstrap* bootstrap, const TraceRecorder& recorder, const std::string& path,
                        const std::vector<std::string>& command);

}  // namespace cclab
