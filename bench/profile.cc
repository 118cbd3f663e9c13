#include "profile.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

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

// Microseconds per byte of `work` over buffers of `bytes` (median of several runs). With `comm`,
// every rank runs it at the same time, as in a collective, and rank 0's time counts.
template <typename Work>
double per_byte_cost(size_t bytes, Comm* comm, Work work) {
  std::vector<float> a(bytes / 4, 1.0f), b(bytes / 4, 2.0f);
  std::vector<double> times;
  for (int i = 0; i < 5; ++i) {
    if (comm) comm->barrier();
    const auto start = std::chrono::steady_clock::now();
    work(a.data(), b.data(), a.size());
    times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  return summarize(times).median / double(bytes);
}

void sum_kernel(float* a, const float* b, size_t n) { reduce(a, a, b, n, DataType::f32, ReduceOp::sum); }
void copy_kernel(float* a, const float* b, size_t n) { std::memcpy(a, b, n * 4); }

double gbps(double us_per_byte) { return us_per_byte > 0 ? 1e-3 / us_per_byte : 0; }

// The node's shared last-level cache: the highest-level data or unified cache of CPU 0 as Linux
// lists it (sysconf reports the host's cache inside some VMs); 16 MiB when nothing says.
size_t last_level_cache_bytes() {
  size_t best_level = 0, bytes = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level_file(dir + "level"), type_file(dir + "type"), size_file(dir + "size");
    size_t level = 0, size = 0;
    std::string type, unit;
    if (!(level_file >> level) || !(type_file >> type) || !(size_file >> size)) continue;
    size_file >> unit;  // "16384K"
    if (type == "Instruction" || level < best_level) continue;
    best_level = level;
    bytes = size * (unit == "M" ? 1 << 20 : unit == "K" ? 1 << 10 : 1);
  }
  return bytes > 0 ? bytes : size_t{16} << 20;
}

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
  p2p.iters = options.iters;  // the cached fit's sweep: 8 B .. max_bytes by x4
  p2p.warmup = options.warmup;
  p2p.timeout_s = options.timeout_s;
  p2p.pairs.clear();
  if (intra_peer > 0) p2p.pairs.emplace_back(0, intra_peer);
  if (inter_peer > 0) p2p.pairs.emplace_back(0, inter_peer);

  std::ostringstream discard;
  const std::vector<P2pPoint> points = run_p2p_bench(comm, p2p, {}, discard);

  // Streaming: both directions at once on arrays far larger than the caches, as in a ring step.
  P2pBenchOptions streaming = p2p;
  streaming.test = P2pTest::bibw;
  streaming.window = 1;
  streaming.min_bytes = streaming.max_bytes = options.streaming_bytes;
  streaming.iters = 3;
  streaming.warmup = 1;
  const std::vector<P2pPoint> streamed = run_p2p_bench(comm, streaming, {}, discard);
  // Collectives move data both ways at once: large messages within the caches are timed that way.
  P2pBenchOptions concurrent = streaming;
  concurrent.min_bytes = concurrent.max_bytes = options.concurrent_bytes;
  concurrent.iters = 10;
  const std::vector<P2pPoint> exchanged = run_p2p_bench(comm, concurrent, {}, discard);

  CostProfile profile;
  profile.transport = comm.transport().name();
  profile.cache_bytes = last_level_cache_bytes();
  // Kernels: alone on small buffers (cached); on every rank at once on large ones (streaming).
  const size_t cached_bytes = size_t{256} << 10;
  profile.cached.gamma_us_per_byte = per_byte_cost(cached_bytes, nullptr, sum_kernel);
  profile.cached.copy_us_per_byte = per_byte_cost(cached_bytes, nullptr, copy_kernel);
  profile.streaming.gamma_us_per_byte = per_byte_cost(options.streaming_bytes, &comm, sum_kernel);
  profile.streaming.copy_us_per_byte = per_byte_cost(options.streaming_bytes, &comm, copy_kernel);

  std::string shared;
  if (comm.rank() == 0) {
    auto link = [&](int peer) {
      LinkCost cached = fit_pair(points, 0, peer), stream = cached;
      for (const P2pPoint& point : exchanged)
        if (point.to == peer) {
          const double beta = point.median_us / double(point.bytes);
          (cached.protocol_bytes == SIZE_MAX ? cached.beta_us_per_byte : cached.large_beta_us_per_byte) = beta;
        }
      for (const P2pPoint& point : streamed)
        if (point.to == peer)
          stream.beta_us_per_byte = stream.large_beta_us_per_byte = point.median_us / double(point.bytes);
      return std::pair{cached, stream};
    };
    const auto intra = link(intra_peer > 0 ? intra_peer : inter_peer);
    const auto inter = link(inter_peer > 0 ? inter_peer : intra_peer);
    profile.cached.intra_node = intra.first;
    profile.streaming.intra_node = intra.second;
    profile.cached.inter_node = inter.first;
    profile.streaming.inter_node = inter.second;
    shared = profile_to_json(profile);
    if (out) *out << "# cost model: " << describe_profile(profile) << "\n";
  }
  return profile_from_json(comm.allgather(shared)[0]);
}

std::string profile_to_json(const CostProfile& profile) {
  auto link = [](const LinkCost& cost) {
    nlohmann::json json{{"alpha_us", cost.alpha_us}, {"beta_us_per_byte", cost.beta_us_per_byte}};
    if (cost.protocol_bytes != SIZE_MAX) {
      json["protocol_bytes"] = cost.protocol_bytes;
      json["large_alpha_us"] = cost.large_alpha_us;
      json["large_beta_us_per_byte"] = cost.large_beta_us_per_byte;
    }
    return json;
  };
  auto regime = [&](const RegimeCost& cost) {
    return nlohmann::json{{"intra_node", link(cost.intra_node)},
                          {"inter_node", link(cost.inter_node)},
                          {"gamma_us_per_byte", cost.gamma_us_per_byte},
                          {"copy_us_per_byte", cost.copy_us_per_byte}};
  };
  return nlohmann::json{{"schema", "cclab.profile/3"},
                        {"transport", profile.transport},
                        {"cache_bytes", profile.cache_bytes},
                        {"cached", regime(profile.cached)},
                        {"streaming", regime(profile.streaming)}}
      .dump(2);
}

CostProfile profile_from_json(const std::string& text) {
  const nlohmann::json json = nlohmann::json::parse(text);
  if (json.value("schema", "") != "cclab.profile/3")
    throw UsageError("not a cclab.profile/3 document (profiles of older builds: run cclab bench p2p --fit again)");
  auto link = [](const nlohmann::json& cost) {
    LinkCost link{cost.at("alpha_us").get<double>(), cost.at("beta_us_per_byte").get<double>()};
    if (cost.contains("protocol_bytes")) {
      link.protocol_bytes = cost.at("protocol_bytes");
      link.large_alpha_us = cost.at("large_alpha_us");
      link.large_beta_us_per_byte = cost.at("large_beta_us_per_byte");
    }
    return link;
  };
  auto regime = [&](const nlohmann::json& cost) {
    return RegimeCost{link(cost.at("intra_node")), link(cost.at("inter_node")),
                      cost.at("gamma_us_per_byte").get<double>(), cost.at("copy_us_per_byte").get<double>()};
  };
  CostProfile profile;
  profile.transport = json.at("transport");
  profile.cache_bytes = json.at("cache_bytes");
  profile.cached = regime(json.at("cached"));
  profile.streaming = regime(json.at("streaming"));
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
  char line[512];
  const LinkCost& intra = p.cached.intra_node;
  char protocol[128] = "";
  if (intra.protocol_bytes != SIZE_MAX)
    std::snprintf(protocol, sizeof(protocol), " (over %zu B: alpha %.2f us, %.2f GB/s)", intra.protocol_bytes,
                  intra.large_alpha_us, gbps(intra.large_beta_us_per_byte));
  std::snprintf(line, sizeof(line),
                "intra-node alpha %.2f us, %.2f GB/s%s cached, %.2f GB/s streaming; inter-node alpha %.2f us, %.2f / "
                "%.2f GB/s; reduce %.2f / %.2f GB/s; calls touching over %zu MiB of a node stream (%s)",
                intra.alpha_us, gbps(intra.beta_us_per_byte), protocol, gbps(p.streaming.intra_node.beta_us_per_byte),
                p.cached.inter_node.alpha_us, gbps(p.cached.inter_node.beta_us_per_byte),
                gbps(p.streaming.inter_node.beta_us_per_byte), gbps(p.cached.gamma_us_per_byte),
                gbps(p.streaming.gamma_us_per_byte), p.cache_bytes >> 20, p.transport.c_str());
  return line;
}

}  // namespace cclab
