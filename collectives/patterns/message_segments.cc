#include "patterns/message_segments.h"

#include <algorithm>
#include <string>

#include "cclab/error.h"

namespace cclab {
namespace {

// Every message tag must fit the 24-bit step field of the wire tag.
constexpr size_t kTagSpace = size_t{1} << 24;

}  // namespace

size_t pipeline_segments(size_t count, size_t segment_elements, size_t tags_per_segment) {
  const size_t wanted = std::max<size_t>(1, (count + segment_elements - 1) / segment_elements);
  return std::min(wanted, kTagSpace / std::max<size_t>(1, tags_per_segment));
}

MessageSegments::MessageSegments(size_t largest_message, size_t segment_elements, size_t phases,
                                 size_t messages_per_phase)
    : segment_elements_(std::max<size_t>(1, segment_elements)), messages_per_phase_(messages_per_phase) {
  const size_t messages = phases * messages_per_phase;
  if (messages == 0 || messages > kTagSpace)
    throw Error(std::to_string(messages) + " messages per rank pair do not fit the 24-bit tag field");
  max_segments_ = pipeline_segments(largest_message, segment_elements_, messages);
  // Uncapped, a segment is at most segment_elements (and at most the message); capped, the
  // largest message's segments are the longest.
  largest_segment_ =
      std::max((largest_message + max_segments_ - 1) / max_segments_, std::min(largest_message, segment_elements_));
}

size_t MessageSegments::segments(size_t elements) const {
  return std::clamp<size_t>((elements + segment_elements_ - 1) / segment_elements_, 1, max_segments_);
}

uint32_t MessageSegments::tag(MessageId id, size_t segment) const {
  return uint32_t((id.phase * messages_per_phase_ + id.message) * max_segments_ + segment);
}

}  // namespace cclab
