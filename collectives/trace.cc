#include "cclab/trace.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "cclab/bootstrap.h"
#include "cclab/whole_file.h"

namespace cclab {
namespace {

thread_local TraceRecorder* active_recorder = nullptr;

long long steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The gathered trace goes through the rendezvous store (64 MiB a message) in one allgather: every
// rank keeps at most its share of this budget, at about this many bytes of JSON per event.
constexpr size_t kTraceBudgetBytes = size_t{40} << 20;
constexpr size_t kBytesPerEvent = 160;

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown host";
  return name;
}

// Transfers overlap one another and the work around them, and a track shows only spans that nest:
// each send and receive goes on the first transfer track free at its start (tracks 1, 2, ...);
// everything else nests on track 0 by construction.
std::vector<int> assign_tracks(const std::vector<TraceEvent>& events) {
  std::vector<size_t> order;
  for (size_t i = 0; i < events.size(); ++i)
    if (events[i].category == "send" || events[i].category == "recv") order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return events[a].start_us < events[b].start_us; });
  std::vector<int> tracks(events.size(), 0);
  std::vector<double> track_free_at;  // end of the last span on transfer track t + 1
  for (size_t i : order) {
    size_t track = 0;
    while (track < track_free_at.size() && track_free_at[track] > events[i].start_us) ++track;
    if (track == track_free_at.size()) track_free_at.push_back(0);
    track_free_at[track] = events[i].start_us + events[i].duration_us;
    tracks[i] = int(track) + 1;
  }
  return tracks;
}

// One rank's events as comma-separated JSON objects (ts and dur in microseconds), after the
// metadata events that name the rank and its tracks.
std::string rank_events_json(const TraceRecorder& recorder) {
  const int rank = recorder.rank();
  const std::vector<TraceEvent>& events = recorder.events();
  const std::vector<int> tracks = assign_tracks(events);
  std::string text;
  const auto append_line = [&](const std::string& line) {
    if (!text.empty()) text += ",\n";
    text += line;
  };
  const auto append = [&](const nlohmann::json& event) { append_line(event.dump()); };
  append({{"name", "process_name"},
          {"ph", "M"},
          {"pid", rank},
          {"args", {{"name", "rank " + std::to_string(rank) + " (" + host_name() + ")"}}}});
  append({{"name", "process_sort_index"}, {"ph", "M"}, {"pid", rank}, {"args", {{"sort_index", rank}}}});
  const int transfer_tracks = tracks.empty() ? 0 : *std::max_element(tracks.begin(), tracks.end());
  for (int track = 0; track <= transfer_tracks; ++track)
    append({{"name", "thread_name"},
            {"ph", "M"},
            {"pid", rank},
            {"tid", track},
            {"args",
             {{"name",
               track == 0 ? std::string("rank ") + std::to_string(rank) : "transfers " + std::to_string(track)}}}});
  for (size_t i = 0; i < events.size(); ++i) {
    const TraceEvent& event = events[i];
    std::string line = nlohmann::json({{"name", event.name},
                                       {"cat", event.category},
                                       {"ph", "X"},
                                       {"ts", event.start_us},
                                       {"dur", event.duration_us},
                                       {"pid", rank},
                                       {"tid", tracks[i]}})
                           .dump();
    if (!event.args.empty()) {
      line.pop_back();  // the closing brace
      line += ",\"args\":{" + event.args + "}}";
    }
    append_line(line);
  }
  return text;
}

}  // namespace

TraceRecorder::TraceRecorder(int rank, int ranks, bool schedule_steps)
    : rank_(rank),
      schedule_steps_(schedule_steps),
      max_events_(kTraceBudgetBytes / size_t(std::max(ranks, 1)) / kBytesPerEvent),
      origin_ns_(steady_ns()) {}

double TraceRecorder::now_us() const { return double(steady_ns() - origin_ns_) / 1e3; }

void TraceRecorder::align() {
  const long long now = steady_ns();
  // Events already recorded keep their place in time relative to the new origin.
  const double shift_us = double(now - origin_ns_) / 1e3;
  for (TraceEvent& event : events_) event.start_us -= shift_us;
  origin_ns_ = now;
}

void TraceRecorder::add(std::string_view category, std::string_view name, double start_us, double end_us,
                        std::string args) {
  if (events_.size() >= max_events_) {
    ++dropped_;
    return;
  }
  events_.push_back(
      {std::string(name), std::string(category), start_us, std::max(0.0, end_us - start_us), std::move(args)});
}

void TraceRecorder::add_gaps(size_t first_event, double start_us, double end_us, std::string_view category,
                             std::string_view name) {
  std::vector<std::pair<double, double>> spans;
  for (size_t i = first_event; i < events_.size(); ++i)
    if (events_[i].category != "send" && events_[i].category != "recv")
      spans.emplace_back(events_[i].start_us, events_[i].start_us + events_[i].duration_us);
  std::sort(spans.begin(), spans.end());
  constexpr double kShortestGapUs = 1;  // clock reads between back-to-back spans are not idle time
  double covered_until = start_us;
  const auto gap_until = [&](double until) {
    if (until - covered_until >= kShortestGapUs) add(category, name, covered_until, until);
  };
  for (const auto& [start, end] : spans) {
    if (start > covered_until) gap_until(std::min(start, end_us));
    covered_until = std::max(covered_until, end);
    if (covered_until >= end_us) return;
  }
  gap_until(end_us);
}

TraceRecorder* active_trace() { return active_recorder; }

ActiveTrace::ActiveTrace(TraceRecorder* recorder) : previous_(active_recorder) { active_recorder = recorder; }
ActiveTrace::~ActiveTrace() { active_recorder = previous_; }

TraceSpan::TraceSpan(std::string_view category, std::string_view name)
    : recorder_(active_recorder), category_(category), name_(name) {
  if (recorder_) start_us_ = recorder_->now_us();
}

TraceSpan::~TraceSpan() {
  if (recorder_) recorder_->add(category_, name_, start_us_, recorder_->now_us(), std::move(args_));
}

void TraceSpan::arg(std::string_view key, double value) {
  if (!args_.empty()) args_ += ',';
  args_ += trace_arg(key, value);
}

void TraceSpan::arg(std::string_view key, std::string_view value) {
  if (!args_.empty()) args_ += ',';
  args_ += trace_arg(key, value);
}

std::string trace_arg(std::string_view key, double value) {
  return nlohmann::json(key).dump() + ":" + nlohmann::json(value).dump();
}

std::string trace_arg(std::string_view key, std::string_view value) {
  return nlohmann::json(key).dump() + ":" + nlohmann::json(value).dump();
}

std::string write_trace(Bootstrap* bootstrap, const TraceRecorder& recorder, const std::string& path,
                        const std::vector<std::string>& command) {
  const auto gather = [&](const std::string& mine) {
    return bootstrap ? bootstrap->allgather(mine) : std::vector<std::string>{mine};
  };
  const std::vector<std::string> ranks = gather(std::to_string(recorder.events().size()) + " " +
                                                std::to_string(recorder.dropped()) + "\n" + rank_events_json(recorder));
  if (bootstrap && bootstrap->rank() != 0) return "";
  size_t dropped = 0, kept = 0;
  nlohmann::json about = {{"command", command}, {"ranks", ranks.size()}, {"dropped_events", nlohmann::json::array()}};
  std::string events;
  for (const std::string& contribution : ranks) {
    const size_t newline = contribution.find('\n');
    const size_t space = contribution.find(' ');
    const size_t rank_dropped = std::stoull(contribution.substr(space + 1, newline - space - 1));
    about["dropped_events"].push_back(rank_dropped);
    dropped += rank_dropped;
    kept += std::stoull(contribution.substr(0, space));
    if (!events.empty()) events += ",\n";
    events.append(contribution, newline + 1);
  }
  write_whole_file(
      path, "{\"displayTimeUnit\":\"ns\",\"otherData\":" + about.dump() + ",\n\"traceEvents\":[\n" + events + "\n]}\n");
  std::string line = "# trace: " + path + " (" + std::to_string(kept) + " spans from " + std::to_string(ranks.size()) +
                     " ranks; open it in ui.perfetto.dev or chrome://tracing)";
  if (dropped > 0)
    line += "\n# warning: the trace kept each rank's first spans: " + std::to_string(dropped) + " more were left out";
  return line + "\n";
}

}  // namespace cclab
