// `cclab suite run FILE [--json OUT] [--baseline FILE]`: the runs of a suite file as one run (one
// run id, one results file), one summary and one exit status; with a baseline, gated as compare
// gates (DESIGN 3.9).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cclab/error.h"
#include "cclab/launch.h"
#include "commands.h"
#include "compare.h"
#include "flag_checks.h"
#include "results.h"
#include "suite_file.h"

namespace cclab {
namespace {

struct SuiteFlags {
  std::string file, json, baseline;
  double threshold_percent = 5;
};

struct Outcome {
  int status;
  std::string errors;  // what the run wrote to stderr
};

// Runs this cclab binary with `args`; its stdout goes straight through, its stderr is kept (for the
// message of a run that was refused) and passed on after.
Outcome run_cclab(const std::vector<std::string>& args) {
  char errors_path[] = "/tmp/cclab-suite-XXXXXX";
  const int errors_fd = mkstemp(errors_path);
  if (errors_fd < 0) throw Error("cannot create a temporary file");
  unlink(errors_path);
  std::cout.flush();
  const pid_t child = fork();
  if (child < 0) throw Error("fork failed");
  if (child == 0) {
    dup2(errors_fd, STDERR_FILENO);
    std::vector<char*> argv;
    std::string self = "cclab";
    argv.push_back(self.data());
    std::vector<std::string> copy = args;
    for (std::string& arg : copy) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  Outcome outcome{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ""};
  char buffer[4096];
  lseek(errors_fd, 0, SEEK_SET);
  for (ssize_t got; (got = read(errors_fd, buffer, sizeof buffer)) > 0;) outcome.errors.append(buffer, size_t(got));
  close(errors_fd);
  return outcome;
}

// Compares the suite's records with the baseline's latest run on every metric both have rows of.
bool passes_baseline(const std::string& baseline, const RunRecords& fresh, double threshold) {
  const RunRecords base = load_run(baseline);
  bool passed = true, any = false;
  for (const char* metric : {"busbw", "bw", "images_per_s"}) {
    CompareOptions options;
    options.metric = metric;
    options.threshold = threshold;
    try {
      const Comparison comparison = compare_runs(base.records, fresh.records, options);
      std::cout << comparison_table(comparison, options);
      passed = passed && regressions(comparison) == 0;
      any = true;
    } catch (const UsageError&) {
      // no rows of this metric in both runs
    }
  }
  if (!any) throw UsageError("--baseline " + baseline + ": no rows in common with this suite's runs");
  return passed;
}

// Parses a run's command line as cclab would, so a misspelt flag ends the suite before any run.
void check_flags(const SuiteRun& run) {
  std::vector<std::string> argv = {"cclab"};
  argv.insert(argv.end(), run.args.begin(), run.args.end());
  CLI::App app{"cclab"};
  app.require_subcommand(1);
  // The actions own the flags the options write into: they must outlive the parse.
  const CommandAction bench = add_bench_commands(app, argv);
  const CommandAction train = add_train_command(app, argv);
  std::vector<std::string> reversed(argv.rbegin(), argv.rend() - 1);  // CLI11 takes them last first
  try {
    app.parse(reversed);
  } catch (const CLI::Error& error) {
    throw UsageError(run.where + ": " + run.name + ": " + error.what());
  }
}

int run_suite(const SuiteFlags& flags) {
  const Suite suite = read_suite(flags.file);
  for (const SuiteRun& run : suite.runs) check_flags(run);
  const std::string results = flags.json.empty() ? suite.results : flags.json;
  check_output_file("--json", results);
  if (!flags.baseline.empty()) load_run(flags.baseline);  // a bad baseline is refused before any run
  // Every run's records carry the suite's run id and start time.
  setenv("CCLAB_RUN_ID", run_id().c_str(), 1);
  setenv("CCLAB_RUN_START", run_start_time().c_str(), 1);

  std::vector<std::pair<const SuiteRun*, std::pair<int, double>>> done;
  for (const SuiteRun& run : suite.runs) {
    std::string command = "cclab";
    for (const std::string& arg : run.args) command += " " + arg;
    std::cout << "== suite " << suite.name << " [" << done.size() + 1 << "/" << suite.runs.size() << "] " << run.name
              << ": " << command << std::endl;
    std::vector<std::string> args = run.args;
    args.insert(args.end(), {"--json", results});
    const auto start = std::chrono::steady_clock::now();
    const Outcome outcome = run_cclab(args);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (outcome.status == 2) {
      std::string message = outcome.errors.substr(0, outcome.errors.find('\n'));
      if (message.rfind("cclab: error: ", 0) == 0) message = message.substr(14);
      throw UsageError(run.where + ": " + run.name + ": " + message);
    }
    std::cerr << outcome.errors;
    done.push_back({&run, {outcome.status, seconds}});
  }

  std::printf("# suite %s: run %s, results in %s\n# %-40s %8s %10s\n", suite.name.c_str(), run_id().c_str(),
              results.c_str(), "run", "seconds", "result");
  bool passed = true;
  for (const auto& [run, outcome] : done) {
    const auto [status, seconds] = outcome;
    std::printf("  %-40s %8.1f %10s\n", run->name.c_str(), seconds,
                status == 0 ? "passed" : ("FAILED (" + std::to_string(status) + ")").c_str());
    passed = passed && status == 0;
  }
  std::fflush(stdout);
  if (!flags.baseline.empty()) {
    std::cout << "# against the baseline " << flags.baseline << "\n";
    passed = passes_baseline(flags.baseline, load_run(results, run_id()), flags.threshold_percent / 100) && passed;
  }
  std::cout << "# suite " << suite.name << ": " << (passed ? "passed" : "FAILED") << std::endl;
  return passed ? 0 : kChecksFailedExitStatus;
}

}  // namespace

CommandAction add_suite_command(CLI::App& app) {
  auto flags = std::make_shared<SuiteFlags>();
  CLI::App* suite = app.add_subcommand("suite", "Run a suite of bench and train runs listed in a TOML file");
  suite->require_subcommand(1);
  CLI::App* run = suite->add_subcommand("run", "Run every [[run]] of FILE as one run: one results file, one verdict");
  run->add_option("FILE", flags->file, "Suite file (TOML; see ci/suites/)")->required();
  run->add_option("--json", flags->json, "Results file (default: the suite's results, or results/NAME.jsonl)");
  run->add_option("--baseline", flags->baseline, "Gate against this results file's latest run, as compare does");
  run->add_option("--threshold", flags->threshold_percent, "With --baseline: smallest change in percent that counts")
      ->capture_default_str()
      ->check(in_range(0, 1000, false));
  return [flags] { return run_suite(*flags); };
}

}  // namespace cclab
