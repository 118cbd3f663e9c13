// Naming the memory of a schedule step (a Region of a buffer) by spans of the array, the way the
// rank and offset math of patterns/ hands them out.
#pragma once

#include "cclab/schedule.h"
#include "patterns/partition.h"

namespace cclab {

/// The elements `span` of `buffer`.
inline Region region_of(BufferKind buffer, Span span) { return {buffer, span.offset, span.count}; }
/// The part `within` of `region`, counted from the region's first element.
inline Region subregion(Region region, Span within) {
  return {region.buffer, region.offset + within.offset, within.count};
}

}  // namespace cclab
