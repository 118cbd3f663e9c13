// What a measurement record measured (DESIGN 3.9): the fields that identify it, per kind, as the
// key that joins two runs' records (compare) and as the label people read (compare, report).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cclab {

/// True for the kinds of records that measure something: collective, p2p, train.
bool is_measurement(const nlohmann::json& record);
/// The fields that identify a measurement of `kind`: two records with equal values measured the
/// same thing.
const std::vector<std::string>& identity_fields(const std::string& kind);
/// Those fields' values as one string, for joining.
std::string record_key(const nlohmann::json& record);
/// The same for people: "allreduce ring ucx+shm f32 sum ranks=2 bytes=1024" (names as they are,
/// numbers as field=value, fields at their usual value left out: host memory, root 0, one node,
/// out of place).
std::string record_label(const nlohmann::json& record);

/// Collective records that differ only in implementation and size, titled by what they share
/// ("allreduce f32 sum ranks=2"), in the order the records first show each title.
struct RecordGroup {
  std::string title;
  std::vector<const nlohmann::json*> records;
};
std::vector<RecordGroup> collective_groups(const std::vector<nlohmann::json>& records);

}  // namespace cclab
