// Checks on a Chrome trace file as a viewer needs it: valid JSON, complete events with the fields
// Perfetto reads, and on every track spans that nest (a span that overlaps another without
// containing it is drawn wrongly or dropped).
#pragma once

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace cclab {

struct TraceFile {
  nlohmann::json json;
  std::vector<nlohmann::json> spans;                    // the complete ("X") events
  std::set<int> ranks;                                  // pids with spans
  std::set<std::pair<std::string, std::string>> kinds;  // (category, name) of every span
  std::string problem;                                  // empty when the file is fit for a viewer
};

inline TraceFile read_trace(const std::string& path) {
  TraceFile trace;
  std::ifstream in(path);
  trace.json = nlohmann::json::parse(in, nullptr, false);
  if (trace.json.is_discarded() || !trace.json.contains("traceEvents")) {
    trace.problem = path + " is not a trace file";
    return trace;
  }
  std::map<std::pair<int, int>, std::vector<nlohmann::json>> tracks;
  for (const nlohmann::json& event : trace.json["traceEvents"]) {
    if (event.value("ph", "") != "X") continue;
    for (const char* field : {"name", "cat", "ts", "dur", "pid", "tid"})
      if (!event.contains(field)) trace.problem = "a span without " + std::string(field) + ": " + event.dump();
    trace.spans.push_back(event);
    trace.ranks.insert(event["pid"].get<int>());
    trace.kinds.insert({event["cat"].get<std::string>(), event["name"].get<std::string>()});
    tracks[{event["pid"].get<int>(), event["tid"].get<int>()}].push_back(event);
  }
  constexpr double kSlackUs = 1e-3;  // the file's microseconds are rounded
  for (auto& [track, events] : tracks) {
    std::sort(events.begin(), events.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
      return a["ts"] != b["ts"] ? a["ts"] < b["ts"] : a["dur"] > b["dur"];
    });
    std::vector<double> open_ends;
    for (const nlohmann::json& event : events) {
      const double start = event["ts"], end = start + event["dur"].get<double>();
      while (!open_ends.empty() && open_ends.back() <= start + kSlackUs) open_ends.pop_back();
      if (!open_ends.empty() && end > open_ends.back() + kSlackUs && trace.problem.empty())
        trace.problem = "a span overlaps its enclosing one without nesting: " + event.dump();
      open_ends.push_back(end);
    }
  }
  return trace;
}

}  // namespace cclab
