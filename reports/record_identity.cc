#include "record_identity.h"

#include <map>
#include <string>
#include <vector>

namespace cclab {
namespace {

const std::map<std::string, std::vector<std::string>>& fields_per_kind() {
  static const std::map<std::string, std::vector<std::string>> fields = {
      {"collective",
       {"collective", "impl", "transport", "mem", "dtype", "op", "root", "inplace", "ranks", "nodes", "bytes"}},
      {"p2p", {"test", "transport", "from", "to", "ranks", "window", "bytes"}},
      {"train", {"model", "mode", "ranks", "grid", "global_batch", "device"}},
  };
  return fields;
}

}  // namespace

bool is_measurement(const nlohmann::json& record) {
  return record.contains("kind") && fields_per_kind().count(record.value("kind", "")) > 0;
}

const std::vector<std::string>& identity_fields(const std::string& kind) { return fields_per_kind().at(kind); }

std::string record_key(const nlohmann::json& record) {
  std::string key;
  for (const std::string& field : identity_fields(record["kind"].get<std::string>()))
    key += record.value(field, nlohmann::json()).dump() + '\x1f';
  return key;
}

std::string record_label(const nlohmann::json& record) {
  static const nlohmann::json usual = {{"mem", "shared"}, {"root", 0}, {"nodes", 1}, {"inplace", false}};
  std::string label;
  for (const std::string& field : identity_fields(record["kind"].get<std::string>())) {
    if (!record.contains(field) || record[field].is_null()) continue;
    const nlohmann::json& value = record[field];
    if (usual.contains(field) && usual[field] == value) continue;
    label += label.empty() ? "" : " ";
    if (field == "inplace") {
      label += "inplace";
    } else if (value.is_string()) {
      label += value.get<std::string>();
    } else {
      label.append(field).append("=");
      label += value.dump();
    }
  }
  return label;
}

std::vector<RecordGroup> collective_groups(const std::vector<nlohmann::json>& records) {
  std::vector<RecordGroup> groups;
  std::map<std::string, size_t> index;
  for (const nlohmann::json& record : records) {
    if (record.value("kind", "") != "collective") continue;
    nlohmann::json shared = record;
    shared["impl"] = shared["transport"] = shared["bytes"] = nullptr;
    const std::string title = record_label(shared);
    const auto [found, added] = index.emplace(title, groups.size());
    if (added) groups.push_back({title, {}});
    groups[found->second].records.push_back(&record);
  }
  return groups;
}

}  // namespace cclab
