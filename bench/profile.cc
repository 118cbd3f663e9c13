#include "profile.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cclab/error.h"
#include "cclab/reduce.h"
#include "p2p_bench.h"
#include "statistics.h"

namespace cclab {
namespace {

LinkCost fit_pair(const std::vector<P2pPoint>& points, int from, int to) {
  std::vector<double> bytes, times;
  for (const P2pPoint& point : points)
    if (point.from == from && point.to == to) {
      bytes.push_back(double(point.bytes));
      times.push_back(point.median_us);
    }
  return fit_link_cost(bytes, times);
}

// Microseconds per byte of `work` over 4 MiB buffers (median of several runs).
template <typename Work>
double per_byte_cost(Work work) {
  constexpr size_t kBytes = size_t{4} << 20;
  std::vector<float> a(kBytes / 4, 1.0f), b(kBytes / 4, 2.0f);
  std::vector<double> times;
  for (int i = 0; i < 9; ++i) {
    const auto start = std::chrono::steady_clock::now();
    work(a.data(), b.data(), a.size());
    times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  return summarize(times).median / double(kBytes);
}

double gbps(double us_per_byte) { return us_per_byte > 0 ? 1e-3 / us_per_byte : 0; }

}  // namespace

CostProfile calibrate_cost_profile(Comm& comm, const CalibrationOptions& options, std::ostream* out) {
  const Topology& topology = comm.topology();
  int intra_peer = -1, inter_peer = -1;
  for (int r = 1; r < comm.size(); ++r) {
    const bool same = topology.node_of_rank[size_t(r)] == topology.node_of_rank[0];
    if (same && intra_peer < 0) intra_peer = r;
    if (!same && inter_peer < 0) inter_peer = r;
  }
  P2pBenchOptions p2p;
  p2p.test = P2pTest::latency;
  p2p.min_bytes = 8;
  p2p.max_bytes = options.max_bytes;
  p2p.step_factor = 4;
  p2p.iters = options.iters;
  p2p.warmup = options.warmup;
  p2p.timeout_s = options.timeout_s;
  p2p.pairs.clear();
  if (intra_peer > 0) p2p.pairs.emplace_back(0, intra_peer);
  if (inter_peer > 0) p2p.pairs.emplace_back(0, inter_peer);

  std::ostringstream discard;
  const std::vector<P2pPoint> points =
      p2p.pairs.empty() ? std::vector<P2pPoint>{} : run_p2p_bench(comm, p2p, {}, discard);

  std::string shared;
  if (comm.rank() == 0) {
    CostProfile profile;
    profile.transport = comm.transport().name();
    if (intra_peer > 0) profile.intra_node = fit_pair(points, 0, intra_peer);
    profile.inter_node = inter_peer > 0 ? fit_pair(points, 0, inter_peer) : profile.intra_node;
    if (intra_peer < 0) profile.intra_node = profile.inter_node;
    profile.gamma_us_per_byte = per_byte_cost([](float* a, const float* b, size_t n) {
      reduce(a, a, b, n, DataType::f32, ReduceOp::sum);
    });
    profile.copy_us_per_byte = per_byte_cost([](float* a, const float* b, size_t n) { std::memcpy(a, b, n * 4); });
    shared = profile_to_json(profile);
    if (out) *out << "# cost model: " << describe_profile(profile) << "\n";
  }
  return profile_from_json(comm.allgather(shared)[0]);
}

std::string profile_to_json(const CostProfile& profile) {
  auto link = [](const LinkCost& cost) {
    return nlohmann::json{{"alpha_us", cost.alpha_us}, {"beta_us_per_byte", cost.beta_us_per_byte}};
  };
  return nlohmann::json{{"schema", "cclab.profile/1"},
                        {"transport", profile.transport},
                        {"intra_node", link(profile.intra_node)},
                        {"inter_node", link(profile.inter_node)},
                        {"gamma_us_per_byte", profile.gamma_us_per_byte},
                        {"copy_us_per_byte", profile.copy_us_per_byte}}
      .dump(2);
}

CostProfile profile_from_json(const std::string& text) {
  const nlohmann::json json = nlohmann::json::parse(text);
  if (json.value("schema", "") != "cclab.profile/1") throw UsageError("not a cclab.profile/1 document");
  auto link = [](const nlohmann::json& cost) {
    return LinkCost{cost.at("alpha_us").get<double>(), cost.at("beta_us_per_byte").get<double>()};
  };
  CostProfile profile;
  profile.transport = json.at("transport");
  profile.intra_node = link(json.at("intra_node"));
  profile.inter_node = link(json.at("inter_node"));
  profile.gamma_us_per_byte = json.at("gamma_us_per_byte");
  profile.copy_us_per_byte = json.at("copy_us_per_byte");
  return profile;
}

void save_profile(const std::string& path, const CostProfile& profile) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  const std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary);
    file << profile_to_json(profile) << "\n";
    if (!file) throw Error("cannot write profile '" + temporary + "'");
  }
  std::filesystem::rename(temporary, path);  // atomic: a reader never sees half a profile
}

CostProfile load_profile(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw UsageError("cannot read profile '" + path + "'");
  std::stringstream text;
  text << file.rdbuf();
  try {
    return profile_from_json(text.str());
  } catch (const std::exception& error) {
    throw UsageError("profile '" + path + "' is not valid: " + error.what());
  }
}

std::string describe_profile(const CostProfile& p) {
  char line[256];
  std::snprintf(line, sizeof(line),
                "intra-node alpha %.2f us, %.2f GB/s; inter-node alpha %.2f us, %.2f GB/s; reduce %.2f GB/s, copy %.2f "
                "GB/s (%s)",
                p.intra_node.alpha_us, gbps(p.intra_node.beta_us_per_byte), p.inter_node.alpha_us,
                gbps(p.inter_node.beta_us_per_byte), gbps(p.gamma_us_per_byte), gbps(p.copy_us_per_byte),
                p.transport.c_str());
  return line;
}

}  // namespace cclab
