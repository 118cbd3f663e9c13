#include "cclab/cost_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cclab/error.h"
#include "cclab/whole_file.h"

namespace cclab {
namespace {

double mix(double cached, double streaming, double fraction) { return cached + fraction * (streaming - cached); }

LinkCost mix(const LinkCost& cached, const LinkCost& streaming, double fraction) {
  LinkCost link = cached;
  link.alpha_us = mix(cached.alpha_us, streaming.alpha_us, fraction);
  link.beta_us_per_byte = mix(cached.beta_us_per_byte, streaming.beta_us_per_byte, fraction);
  link.large_alpha_us = mix(cached.large_alpha_us, streaming.large_alpha_us, fraction);
  link.large_beta_us_per_byte = mix(cached.large_beta_us_per_byte, streaming.large_beta_us_per_byte, fraction);
  return link;
}

double gbps(double us_per_byte) { return us_per_byte > 0 ? 1e-3 / us_per_byte : 0; }

}  // namespace

double StreamingCurve::fraction(size_t node_footprint_bytes) const {
  if (points.empty()) return 0;
  const double footprint = std::log2(double(std::max<size_t>(node_footprint_bytes, 1)));
  if (footprint <= std::log2(double(points.front().first))) return points.front().second;
  for (size_t i = 1; i < points.size(); ++i) {
    const double low = std::log2(double(points[i - 1].first)), high = std::log2(double(points[i].first));
    if (footprint <= high)
      return mix(points[i - 1].second, points[i].second, high > low ? (footprint - low) / (high - low) : 1.0);
  }
  return points.back().second;
}

StreamingCurve StreamingCurve::at_least(size_t bytes) const {
  if (points.empty() || bytes <= points.front().first) return *this;
  // A first point at `bytes` with the fraction there; the later points as they were, so that the
  // curve beyond `bytes` is unchanged.
  StreamingCurve raised{{{bytes, fraction(bytes)}}};
  for (const auto& point : points)
    if (point.first > bytes) raised.points.push_back(point);
  return raised;
}

CostProfile CostProfile::within_working_set(size_t working_set_bytes) const {
  CostProfile profile = *this;
  profile.streaming_curve = streaming_curve.at_least(working_set_bytes);
  profile.kernel_streaming_curve = kernel_streaming_curve.at_least(working_set_bytes);
  return profile;
}

RegimeCost CostProfile::regime(size_t node_footprint_bytes) const {
  const double fraction = streaming_curve.fraction(node_footprint_bytes);
  const double kernel_fraction = kernel_streaming_curve.fraction(node_footprint_bytes);
  return {mix(cached.intra_node, streaming.intra_node, fraction),
          mix(cached.inter_node, streaming.inter_node, fraction),
          mix(cached.gamma_us_per_byte, streaming.gamma_us_per_byte, kernel_fraction),
          mix(cached.copy_us_per_byte, streaming.copy_us_per_byte, kernel_fraction),
          mix(cached.shared_write_us_per_byte, streaming.shared_write_us_per_byte, fraction),
          mix(cached.dirty_read_us_per_byte, streaming.dirty_read_us_per_byte, fraction)};
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
                          {"copy_us_per_byte", cost.copy_us_per_byte},
                          {"shared_write_us_per_byte", cost.shared_write_us_per_byte},
                          {"dirty_read_us_per_byte", cost.dirty_read_us_per_byte}};
  };
  auto level = [](const std::string& text) { return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text); };
  return nlohmann::json{{"schema", "cclab.profile/5"},
                        {"transport", profile.transport},
                        {"wire", {{"intra", level(profile.wire.intra)}, {"inter", level(profile.wire.inter)}}},
                        {"streaming_curve", profile.streaming_curve.points},
                        {"kernel_streaming_curve", profile.kernel_streaming_curve.points},
                        {"host_ports",
                         {{"ports", profile.host_ports.ports}, {"us_per_byte", profile.host_ports.us_per_byte}}},
                        {"cached", regime(profile.cached)},
                        {"streaming", regime(profile.streaming)}}
      .dump(2);
}

namespace {

// Bounds of a profile's values: a reader never trusts a file. Times and costs are finite and not
// negative; a curve has a few dozen points at most, sorted, with fractions from 0 to 1.
constexpr size_t kMostCurvePoints = 256;
constexpr size_t kLargestProfileBytes = size_t{1} << 20;
constexpr size_t kLargestProtocolBytes = size_t{1} << 40;
constexpr int kMostHostPorts = 64;

// A count of bytes as the writer writes one: a whole number of at least 0. nlohmann's conversion of
// any other number (1e300, -1.5) to size_t is undefined behaviour.
size_t bytes_value(const nlohmann::json& value, const std::string& what) {
  if (!value.is_number_unsigned())
    throw UsageError(what + " is not a whole number of bytes (a " + value.type_name() + ")");
  return value.get<size_t>();
}

double cost_value(const nlohmann::json& object, const char* key) {
  const double value = object.at(key).get<double>();
  if (!std::isfinite(value) || value < 0)
    throw UsageError(std::string(key) + " is " + std::to_string(value) + " (a finite value of at least 0 expected)");
  return value;
}

StreamingCurve curve_value(const nlohmann::json& json, const char* key) {
  const std::string name(key);
  const nlohmann::json& list = json.at(key);
  if (!list.is_array()) throw UsageError(name + " is not a list of [footprint, fraction] points");
  if (list.empty() || list.size() > kMostCurvePoints)
    throw UsageError(name + " has " + std::to_string(list.size()) + " points (1 to " +
                     std::to_string(kMostCurvePoints) + " expected)");
  StreamingCurve curve;
  for (const nlohmann::json& point : list) {
    if (!point.is_array() || point.size() != 2)
      throw UsageError(name + " has a point that is not [footprint, fraction]");
    curve.points.emplace_back(bytes_value(point[0], name + " footprint"), point[1].get<double>());
  }
  for (size_t i = 0; i < curve.points.size(); ++i) {
    const auto& [footprint, fraction] = curve.points[i];
    if (footprint == 0 || !(fraction >= 0 && fraction <= 1))
      throw UsageError(name + " point " + std::to_string(i) + " is not a footprint above 0 with a fraction in [0, 1]");
    if (i > 0 && (footprint <= curve.points[i - 1].first || fraction < curve.points[i - 1].second))
      throw UsageError(name + " is not sorted by footprint with fractions that never fall");
  }
  return curve;
}

}  // namespace

CostProfile profile_from_json(const std::string& text) {
  if (text.size() > kLargestProfileBytes)
    throw UsageError("a profile of " + std::to_string(text.size()) + " bytes is larger than any cclab writes");
  const nlohmann::json json = nlohmann::json::parse(text);
  if (json.value("schema", "") != "cclab.profile/5")
    throw UsageError("not a cclab.profile/5 document (profiles of older builds: run cclab bench p2p --fit again)");
  auto link = [](const nlohmann::json& cost) {
    LinkCost link{cost_value(cost, "alpha_us"), cost_value(cost, "beta_us_per_byte")};
    if (cost.contains("protocol_bytes")) {
      link.protocol_bytes = bytes_value(cost.at("protocol_bytes"), "protocol_bytes");
      if (link.protocol_bytes == 0 || link.protocol_bytes > kLargestProtocolBytes)
        throw UsageError("protocol_bytes is " + std::to_string(link.protocol_bytes) + " (1 B to 1 TiB expected)");
      link.large_alpha_us = cost_value(cost, "large_alpha_us");
      link.large_beta_us_per_byte = cost_value(cost, "large_beta_us_per_byte");
    }
    return link;
  };
  auto regime = [&](const nlohmann::json& cost) {
    return RegimeCost{link(cost.at("intra_node")),
                      link(cost.at("inter_node")),
                      cost_value(cost, "gamma_us_per_byte"),
                      cost_value(cost, "copy_us_per_byte"),
                      cost_value(cost, "shared_write_us_per_byte"),
                      cost_value(cost, "dirty_read_us_per_byte")};
  };
  CostProfile profile;
  profile.transport = json.at("transport");
  // Profiles written before the wire was recorded have none: their wire is unknown, not refused.
  if (json.contains("wire")) {
    const nlohmann::json& wire = json.at("wire");
    if (!wire.is_object()) throw UsageError("wire is not an object of intra and inter");
    for (const auto& [key, into] : {std::pair{"intra", &profile.wire.intra}, std::pair{"inter", &profile.wire.inter}})
      if (wire.contains(key) && !wire.at(key).is_null()) *into = wire.at(key).get<std::string>();
  }
  profile.streaming_curve = curve_value(json, "streaming_curve");
  profile.kernel_streaming_curve = curve_value(json, "kernel_streaming_curve");
  profile.cached = regime(json.at("cached"));
  profile.streaming = regime(json.at("streaming"));
  // Profiles fitted before the ports were measured: one port per host, as fast as one flow.
  profile.host_ports = {1, profile.cached.inter_node.large_message_beta()};
  if (json.contains("host_ports")) {
    const nlohmann::json& ports = json.at("host_ports");
    if (!ports.is_object() || !ports.contains("ports") || !ports.at("ports").is_number_integer())
      throw UsageError("host_ports is not an object of ports (a whole number) and us_per_byte");
    const int64_t count = ports.at("ports").get<int64_t>();
    if (count < 1 || count > kMostHostPorts)
      throw UsageError("host_ports.ports is " + std::to_string(count) + " (1 to " + std::to_string(kMostHostPorts) +
                       " expected)");
    profile.host_ports = {int(count), cost_value(ports, "us_per_byte")};
  }
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
  const std::string text = read_small_file(path, "profile", kLargestProfileBytes);
  try {
    return profile_from_json(text);
  } catch (const std::exception& error) {
    throw UsageError("profile '" + path + "' is not valid: " + error.what());
  }
}

namespace {

// " (over 512 B: 3.14 us, 9.84 GB/s)" for a line that breaks at a protocol switch, else "".
std::string describe_break(const LinkCost& link) {
  if (link.protocol_bytes == SIZE_MAX) return "";
  char text[128];
  std::snprintf(text, sizeof(text), " (over %zu B: %.2f us, %.2f GB/s)", link.protocol_bytes, link.large_alpha_us,
                gbps(link.large_beta_us_per_byte));
  return text;
}

// ", host ports 1 x 0.12 GB/s" where the ports limit what a host's flows move at once, else "".
std::string describe_host_ports(const HostPorts& ports) {
  if (ports.us_per_byte <= 0) return "";
  char text[96];
  std::snprintf(text, sizeof(text), ", host ports %d x %.2f GB/s", ports.ports, gbps(ports.us_per_byte));
  return text;
}

}  // namespace

std::string describe_profile(const CostProfile& p) {
  const LinkCost &intra = p.cached.intra_node, &inter = p.cached.inter_node;
  char line[512];
  std::snprintf(line, sizeof(line), "intra-node alpha %.2f us, %.2f GB/s%s; inter-node alpha %.2f us, %.2f GB/s%s%s; "
                "reduce %.2f GB/s (%s)", intra.alpha_us, gbps(intra.beta_us_per_byte), describe_break(intra).c_str(),
                inter.alpha_us, gbps(inter.beta_us_per_byte), describe_break(inter).c_str(),
                describe_host_ports(p.host_ports).c_str(), gbps(p.cached.gamma_us_per_byte), p.transport.c_str());
  return line;
}

std::string describe_profile_in_full(const CostProfile& p) {
  char line[2048];
  const LinkCost& intra = p.cached.intra_node;
  const std::string protocol = describe_break(intra), inter_protocol = describe_break(p.cached.inter_node);
  auto describe_curve = [](const StreamingCurve& streaming_curve) {
    std::string curve;
    for (const auto& [footprint, fraction] : streaming_curve.points) {
      char point[48];
      std::snprintf(point, sizeof(point), "%s%zuM:%.0f%%", curve.empty() ? "" : " ", footprint >> 20, fraction * 100);
      curve += point;
    }
    return curve;
  };
  const std::string curve = describe_curve(p.streaming_curve), kernel_curve = describe_curve(p.kernel_streaming_curve);
  std::snprintf(line, sizeof(line),
                "intra-node alpha %.2f us, %.2f GB/s%s cached, %.2f GB/s streaming; "
                "inter-node alpha %.2f us, %.2f GB/s%s cached, %.2f GB/s streaming%s; reduce %.2f / %.2f GB/s; "
                "writing what a peer read +%.2f / %.2f ns/B, reading what a peer wrote +%.2f / %.2f ns/B; "
                "streaming share by node footprint: transfers %s, reductions %s (%s)",
                intra.alpha_us, gbps(intra.beta_us_per_byte), protocol.c_str(),
                gbps(p.streaming.intra_node.beta_us_per_byte), p.cached.inter_node.alpha_us,
                gbps(p.cached.inter_node.beta_us_per_byte), inter_protocol.c_str(),
                gbps(p.streaming.inter_node.beta_us_per_byte), describe_host_ports(p.host_ports).c_str(),
                gbps(p.cached.gamma_us_per_byte),
                gbps(p.streaming.gamma_us_per_byte), p.cached.shared_write_us_per_byte * 1e3,
                p.streaming.shared_write_us_per_byte * 1e3, p.cached.dirty_read_us_per_byte * 1e3,
                p.streaming.dirty_read_us_per_byte * 1e3, curve.c_str(), kernel_curve.c_str(), p.transport.c_str());
  return line;
}

}  // namespace cclab
