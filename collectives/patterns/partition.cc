#include "patterns/partition.h"

namespace cclab {

Span balanced_part(size_t count, size_t parts, size_t index) {
  const size_t base = count / parts, extra = count % parts;
  const size_t offset = index * base + (index < extra ? index : extra);
  return {offset, base + (index < extra ? 1 : 0)};
}

Span balanced_part(Span span, size_t parts, size_t index) {
  Span part = balanced_part(span.count, parts, index);
  part.offset += span.offset;
  return part;
}

}  // namespace cclab
