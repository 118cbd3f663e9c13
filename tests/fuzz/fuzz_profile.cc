// profile_from_json (cclab/cost_model.h) on any text. It throws UsageError, or nlohmann's parse and
// type errors (load_profile reports those as UsageError); a profile it accepts can be described,
// evaluated at any footprint, and written and read back.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "cclab/cost_model.h"
#include "cclab/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  cclab::CostProfile profile;
  try {
    profile = cclab::profile_from_json(text);
  } catch (const cclab::UsageError&) {
    return 0;
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  if (cclab::describe_profile_in_full(profile).empty()) std::abort();
  for (size_t footprint : {size_t{0}, size_t{1}, size_t{1} << 20, SIZE_MAX}) {
    const cclab::RegimeCost cost = profile.regime(footprint);
    for (double value : {cost.intra_node.alpha_us, cost.intra_node.beta_us_per_byte, cost.inter_node.alpha_us,
                         cost.inter_node.beta_us_per_byte, cost.gamma_us_per_byte})
      if (!std::isfinite(value) || value < 0) std::abort();
  }
  try {
    cclab::profile_from_json(cclab::profile_to_json(profile));
  } catch (const std::exception&) {
    std::abort();  // what the writer writes, the reader reads
  }
  return 0;
}
