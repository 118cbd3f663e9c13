#include "table.h"

#include <cstdio>

#include "results.h"
#include "text_format.h"

namespace cclab {
namespace {

std::string busbw_rule(const std::string& collective) {
  if (collective == "allreduce") return "algbw x 2(n-1)/n";
  if (collective == "reduce_scatter" || collective == "allgather") return "algbw x (n-1)/n";
  return "algbw";
}

}  // namespace

std::string transport_column(const nlohmann::json& record) {
  const std::string transport = record.at("transport").get<std::string>();
  const Wire wire = wire_of_record(record);
  if (wire.empty()) return transport;
  // The first transport, and "+shm" for the mailboxes; the wire says the rest ("ucx+ucx:tcp" and
  // "ucx+mpi" read "ucx:sysv+cma/tcp" and "ucx:sysv+cma/mpi").
  std::string family = transport.substr(0, transport.find_first_of("+:"));
  if (transport.find("+shm") != std::string::npos) family += "+shm";
  if ((wire.intra.empty() || wire.intra == family) && (wire.inter.empty() || wire.inter == family)) return family;
  // A level the family itself names ("mpi:tcp" on an mpi row) drops the repeated name: "mpi:vader+cma/tcp".
  auto shorter = [prefix = family + ":"](const std::string& level) {
    return level.rfind(prefix, 0) == 0 ? level.substr(prefix.size()) : level;
  };
  return family + ":" + Wire{shorter(wire.intra), shorter(wire.inter)}.short_text();
}

std::string collective_table_header(const nlohmann::json& record, bool percentiles) {
  const std::string collective = record.at("collective");
  std::string text;
  text += format_text("# cclab bench %s: %d ranks on %d node(s), launcher %s, binding %s\n", collective.c_str(),
                      record.at("ranks").get<int>(), record.at("nodes").get<int>(),
                      record.value("launcher", std::string("?")).c_str(),
                      record.value("binding", std::string("?")).c_str());
  // Several implementations take turns in rounds from a size on (bench/collective_bench.cc).
  const std::string turns =
      record.contains("turns")
          ? format_text(
                ", from %zu B on in %d rounds taking turns with the other implementations (one untimed "
                "iteration before each later round)",
                record.at("turns").at("from_bytes").get<size_t>(), record.at("turns").at("rounds").get<int>())
          : std::string();
  text += format_text("# %d timed iterations after %d warmup%s, %s; segment %zu B\n", record.at("iters").get<int>(),
                      record.at("warmup").get<int>(), turns.c_str(),
                      record.value("inplace", false) ? "in place" : "out of place",
                      record.value("segment_bytes", size_t{0}));
  text +=
      "# time: each iteration timed on every rank, the slowest rank's time kept; "
      "min/median/max over iterations, in us\n";
  text += "# algbw = size / median time; busbw = " + busbw_rule(collective) + "; GB/s with GB = 10^9 B\n";
  text +=
      "# pred_us: the alpha-beta-gamma model's time for the algorithm's schedules (- for vendors); a calibrated model\n"
      "# re-measures its core-to-core sharing costs before each size. auto:X = what auto ran: the model's pick, or\n"
      "# where others are predicted within 5/3 of it, the fastest of them timed in its first call\n";
  text += format_text("#%11s %12s %5s %6s %5s %21s %18s %10s %10s %10s%s %8s %8s %7s %10s\n", "size(B)", "count",
                      "type", "redop", "root", "impl", "transport", "min_us", "median_us", "max_us",
                      percentiles ? "     p99_us" : "", "algbw", "busbw", "#wrong", "pred_us");
  return text;
}

std::string collective_table_row(const nlohmann::json& record, bool percentiles) {
  const auto& time = record.at("time_us");
  const std::string wrong = record.at("wrong").is_null() ? "N/A" : std::to_string(record.at("wrong").get<long>());
  const std::string p99 = percentiles ? format_text(" %10.2f", time.at("p99").get<double>()) : "";
  const std::string predicted =
      record.at("pred_us").is_null() ? "-" : format_text("%.2f", record.at("pred_us").get<double>());
  std::string impl = record.at("impl").get<std::string>();
  if (record.contains("selected")) impl.append(":").append(record.at("selected").get<std::string>());
  return format_text("%12zu %12zu %5s %6s %5d %21s %18s %10.2f %10.2f %10.2f%s %8.3f %8.3f %7s %10s\n",
                     record.at("bytes").get<size_t>(), record.at("count").get<size_t>(),
                     record.at("dtype").get<std::string>().c_str(), record.at("op").get<std::string>().c_str(),
                     record.at("root").get<int>(), impl.c_str(), transport_column(record).c_str(),
                     time.at("min").get<double>(), time.at("median").get<double>(), time.at("max").get<double>(),
                     p99.c_str(), record.at("algbw_gbps").get<double>(), record.at("busbw_gbps").get<double>(),
                     wrong.c_str(), predicted.c_str());
}

}  // namespace cclab
