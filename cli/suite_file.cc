#include "suite_file.h"

#include <toml++/toml.h>

#include <filesystem>
#include <sstream>

#include "cclab/error.h"

namespace cclab {
namespace {

std::string where(const std::string& path, const toml::node& node) {
  return path + ":" + std::to_string(node.source().begin.line);
}

std::string text_value(const std::string& path, const toml::node& node, const std::string& key) {
  if (!node.is_string()) throw UsageError(where(path, node) + ": " + key + " must be a string");
  return node.value<std::string>().value();
}

SuiteRun read_run(const std::string& path, const toml::table& table, size_t index) {
  SuiteRun run;
  run.where = where(path, table);
  for (const auto& [key, value] : table) {
    if (key == "name")
      run.name = text_value(path, value, "name");
    else if (key == "command") {
      std::istringstream words(text_value(path, value, "command"));
      for (std::string word; words >> word;) run.args.push_back(word);
      run.where = where(path, value);
    } else
      throw UsageError(where(path, value) + ": unknown key '" + std::string(key.str()) +
                       "' in a [[run]] (name, command)");
  }
  if (run.args.empty()) throw UsageError(run.where + ": this [[run]] has no command");
  if (run.args[0] != "bench" && run.args[0] != "train")
    throw UsageError(run.where + ": a suite runs bench and train commands, not '" + run.args[0] + "'");
  for (const std::string& arg : run.args)
    if (arg == "--json" || arg.rfind("--json=", 0) == 0)
      throw UsageError(run.where + ": drop --json: the suite writes every run's records to its results file");
  if (run.name.empty()) run.name = "run " + std::to_string(index + 1);
  return run;
}

}  // namespace

Suite read_suite(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw UsageError(path + ": no such suite file");
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& error) {
    throw UsageError(path + ":" + std::to_string(error.source().begin.line) + ": " + std::string(error.description()));
  }
  Suite suite;
  suite.name = std::filesystem::path(path).stem().string();
  for (const auto& [key, value] : root) {
    if (key == "name") {
      suite.name = text_value(path, value, "name");
    } else if (key == "results") {
      suite.results = text_value(path, value, "results");
    } else if (key == "run") {
      const toml::array* runs = value.as_array();
      if (!runs || !runs->is_array_of_tables()) throw UsageError(where(path, value) + ": run must be [[run]] tables");
      for (const toml::node& run : *runs) suite.runs.push_back(read_run(path, *run.as_table(), suite.runs.size()));
    } else {
      throw UsageError(where(path, value) + ": unknown key '" + std::string(key.str()) + "' (name, results, [[run]])");
    }
  }
  if (suite.runs.empty()) throw UsageError(path + ": the suite has no [[run]]");
  if (suite.results.empty()) suite.results = "results/" + suite.name + ".jsonl";
  return suite;
}

}  // namespace cclab
