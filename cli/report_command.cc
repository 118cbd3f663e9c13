// `cclab report FILE... [-o OUT] [--format html|md|csv|junit]`: results as a page with charts, for a
// CI page, a spreadsheet or a test dashboard (DESIGN 3.5, 3.9).

#include <filesystem>
#include <iostream>
#include <memory>

#include "cclab/error.h"
#include "cclab/whole_file.h"
#include "commands.h"
#include "flag_checks.h"
#include "report.h"

namespace cclab {
namespace {

struct ReportFlags {
  std::vector<std::string> files;
  std::string output, format, run_id;
};

// The format named, or the one -o's extension implies (.md, .csv, .xml), or Markdown.
std::string format_of(const ReportFlags& flags) {
  if (!flags.format.empty()) {
    if (flags.format != "html" && flags.format != "md" && flags.format != "csv" && flags.format != "junit")
      throw UsageError("--format takes html, md, csv or junit, not '" + flags.format + "'");
    return flags.format;
  }
  const std::string extension = std::filesystem::path(flags.output).extension().string();
  if (extension == ".csv") return "csv";
  if (extension == ".xml") return "junit";
  if (extension == ".html" || extension == ".htm") return "html";
  if (extension.empty() || extension == ".md") return "md";
  throw UsageError("-o " + flags.output + ": say which --format (html, md, csv or junit) a '" + extension +
                   "' file is");
}

int report(const ReportFlags& flags) {
  const std::string format = format_of(flags);
  if (!flags.output.empty()) check_output_file("-o", flags.output);
  std::vector<ReportInput> inputs;
  for (const std::string& file : flags.files) inputs.push_back({file, load_run(file, flags.run_id)});
  const std::string text = format == "html"    ? render_html(inputs)
                           : format == "csv"   ? render_csv(inputs)
                           : format == "junit" ? render_junit(inputs)
                                               : render_markdown(inputs);
  if (flags.output.empty())
    std::cout << text << std::flush;
  else
    write_whole_file(flags.output, text);
  return 0;
}

}  // namespace

CommandAction add_report_command(CLI::App& app) {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* sub =
      app.add_subcommand("report", "Render results (JSONL) as HTML with charts, Markdown, CSV or JUnit XML");
  sub->add_option("FILE", flags->files, "Results files; the latest run of each unless --run")->required();
  sub->add_option("-o,--output", flags->output, "Write here (default: standard output)");
  sub->add_option("--format", flags->format, "html, md, csv or junit (default: from -o's extension, else md)");
  sub->add_option("--run", flags->run_id, "Report this run of each file instead of its latest");
  return [flags] { return report(*flags); };
}

}  // namespace cclab
