// The JUnit XML report (the schema Jenkins and GitLab read): what a CI dashboard lists as tests.
#include <cmath>
#include <cstdio>

#include "record_identity.h"
#include "report.h"
#include "text_format.h"

namespace cclab {
namespace {

// Seconds as JUnit's time attribute takes them: a plain decimal.
std::string seconds_text(double seconds) {
  return format_text("%.9f", std::isfinite(seconds) && seconds > 0 ? seconds : 0.0);
}

struct TestCase {
  std::string classname, name;
  double seconds = 0;
  std::string failure;  // "" when it passed
};

// The test cases of one run: every checked collective row, every training run, every gate.
std::vector<TestCase> test_cases(const std::vector<nlohmann::json>& records) {
  std::vector<TestCase> cases;
  for (const nlohmann::json& record : records) {
    const std::string kind = record.value("kind", "");
    if (kind == "collective" && record["wrong"].is_number()) {
      TestCase test{"cclab.collective." + record.value("collective", ""), record_label(record),
                    record["time_us"]["median"].get<double>() * 1e-6, ""};
      const uint64_t wrong = record["wrong"].get<uint64_t>();
      if (wrong > 0) test.failure = std::to_string(wrong) + " wrong elements";
      cases.push_back(test);
    } else if (kind == "train") {
      TestCase test{"cclab.train." + record.value("mode", ""), record_label(record), record.value("train_time_s", 0.0),
                    ""};
      const nlohmann::json& loss = record["final_loss"];
      if (!loss.is_number() || !std::isfinite(loss.get<double>())) test.failure = "the loss is not finite";
      cases.push_back(test);
    } else if (kind == "summary") {
      if (record["wrong"].is_number()) {
        const uint64_t wrong = record["wrong"].get<uint64_t>();
        cases.push_back({"cclab.gate", "no wrong elements", 0, wrong ? std::to_string(wrong) + " wrong elements" : ""});
      }
      if (record.contains("min_busbw_gbps") && record.contains("average_busbw_gbps")) {
        const double floor = record["min_busbw_gbps"].get<double>();
        for (const auto& [impl, average] : record["average_busbw_gbps"].items()) {
          const double gbps = average.get<double>();
          cases.push_back({"cclab.gate",
                           "average busbw of " + impl + " at least " + record["min_busbw_gbps"].dump() + " GB/s", 0,
                           gbps < floor ? "average busbw " + std::to_string(gbps) + " GB/s" : ""});
        }
      }
    }
  }
  return cases;
}

}  // namespace

std::string render_junit(const std::vector<ReportInput>& inputs) {
  std::string suites;
  size_t all_tests = 0, all_failures = 0;
  for (const ReportInput& input : inputs) {
    const std::vector<TestCase> cases = test_cases(input.run.records);
    size_t failures = 0;
    std::string body;
    for (const TestCase& test : cases) {
      body += "    <testcase classname=\"" + xml_escaped(test.classname) + "\" name=\"" + xml_escaped(test.name) +
              "\" time=\"" + seconds_text(test.seconds) + "\"";
      if (test.failure.empty()) {
        body += "/>\n";
      } else {
        ++failures;
        body += ">\n      <failure message=\"" + xml_escaped(test.failure) + "\" type=\"cclab\">" +
                xml_escaped(test.failure) + "</failure>\n    </testcase>\n";
      }
    }
    suites += "  <testsuite name=\"" + xml_escaped(input.path + " run " + input.run.run_id) + "\" tests=\"" +
              std::to_string(cases.size()) + "\" failures=\"" + std::to_string(failures) + "\" errors=\"0\"" +
              (input.run.start_time.empty() ? "" : " timestamp=\"" + xml_escaped(input.run.start_time) + "\"") + ">\n" +
              body + "  </testsuite>\n";
    all_tests += cases.size();
    all_failures += failures;
  }
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"cclab\" tests=\"" + std::to_string(all_tests) +
         "\" failures=\"" + std::to_string(all_failures) + "\">\n" + suites + "</testsuites>\n";
}

}  // namespace cclab
