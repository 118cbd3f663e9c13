// Vega, Vega-Lite and vega-embed (npm, pinned in reports/web/package-lock.json), embedded in the
// binary at build time, so an HTML report inlines them and opens offline.
#pragma once

#include <optional>

namespace cclab {

struct ChartLibraries {
  const char* vega;
  const char* vega_lite;
  const char* vega_embed;
};

/// The libraries, or nullopt in a build made without them (ci/install-deps.sh installs them).
std::optional<ChartLibraries> chart_libraries();

}  // namespace cclab
