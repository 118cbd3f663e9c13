// Copies whose destination nobody reads soon, for collectives whose arrays do not fit in the
// caches: non-temporal stores write the destination's lines to memory without first reading them
// into the cache (no read-for-ownership), so such a copy moves two bytes of memory traffic per byte
// instead of three. Where the arrays fit in the caches a plain copy is faster, since the next
// reader finds the lines there.
#pragma once

#include <cstddef>

namespace cclab {

/// Copies `bytes` from `source` to `target` (not overlapping) with non-temporal stores, and fences
/// them, so the copy is visible to other cores in order with later stores.
void streaming_copy(void* target, const void* source, size_t bytes);

}  // namespace cclab
