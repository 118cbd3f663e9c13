// The trace recorder (cclab/trace.h): spans on the active recorder only, gaps as idle spans, the
// cap on a rank's events, and a file a viewer reads.
#include "cclab/trace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "trace_check.h"

namespace cclab {
namespace {

TEST(Trace, SpansGoToTheActiveRecorderOnly) {
  TraceRecorder recorder(0, 1, false);
  { const TraceSpan untraced("compute", "forward"); }
  EXPECT_TRUE(recorder.events().empty());
  {
    const ActiveTrace active(&recorder);
    TraceSpan span("compute", "forward");
    ASSERT_TRUE(span);
    span.arg("layers", "0..3");
    span.arg("samples", 32);
  }
  EXPECT_EQ(active_trace(), nullptr);
  ASSERT_EQ(recorder.events().size(), 1u);
  EXPECT_EQ(recorder.events()[0].name, "forward");
  EXPECT_EQ(recorder.events()[0].args, "\"layers\":\"0..3\",\"samples\":32.0");
}

TEST(Trace, GapsBetweenTopLevelSpansBecomeIdleSpans) {
  TraceRecorder recorder(0, 1, false);
  recorder.add("compute", "forward", 10, 20);
  recorder.add("comm", "allreduce", 12, 15);  // inside forward: no gap
  recorder.add("send", "send", 20, 40);       // a transfer runs beside the work: not covering
  recorder.add("compute", "backward", 30, 50);
  recorder.add_gaps(0, 0, 60, "idle", "idle");
  std::vector<std::pair<double, double>> idle;
  for (const TraceEvent& event : recorder.events())
    if (event.category == "idle") idle.emplace_back(event.start_us, event.start_us + event.duration_us);
  EXPECT_EQ(idle, (std::vector<std::pair<double, double>>{{0, 10}, {20, 30}, {50, 60}}));
}

TEST(Trace, ARankKeepsItsShareOfTheBudgetAndCountsTheRest) {
  TraceRecorder recorder(3, 4096, false);  // a share of a few hundred events
  for (int i = 0; i < 100000; ++i) recorder.add("compute", "forward", i, i + 1);
  EXPECT_GT(recorder.events().size(), 0u);
  EXPECT_LT(recorder.events().size(), 100000u);
  EXPECT_EQ(recorder.events().size() + recorder.dropped(), 100000u);
}

TEST(Trace, OneProcessWritesAFileAViewerReads) {
  TraceRecorder recorder(0, 1, true);
  recorder.add("collective", "allreduce ring", 0, 100);
  recorder.add("send", "send", 5, 60, trace_arg("peer", 1));
  recorder.add("recv", "recv", 6, 70, trace_arg("peer", 1));  // overlaps the send: another track
  recorder.add("reduce", "reduce", 70, 80);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("cclab_trace_test_" + std::to_string(getpid()) + ".json")).string();
  const std::string line = write_trace(nullptr, recorder, path, {"cclab", "bench"});
  EXPECT_NE(line.find("4 spans from 1 ranks"), std::string::npos) << line;
  const TraceFile file = read_trace(path);
  EXPECT_EQ(file.problem, "");
  EXPECT_EQ(file.spans.size(), 4u);
  EXPECT_EQ(file.json["otherData"]["command"][1], "bench");
  std::set<int> tracks;
  for (const nlohmann::json& span : file.spans) tracks.insert(span["tid"].get<int>());
  EXPECT_EQ(tracks, (std::set<int>{0, 1, 2}));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace cclab
