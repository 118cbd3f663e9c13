// Cutting messages into pipeline segments and numbering them with tags: pure offset and tag math.
// Sender and receiver cut and number alike from what both know (a message's length, its phase),
// which is what lets them match segment by segment without telling each other.
#pragma once

#include <cstddef>
#include <cstdint>

#include "patterns/partition.h"

namespace cclab {

/// How many pipeline segments `count` elements are cut into: enough that none exceeds
/// `segment_elements`, but no more than the 24-bit step field of a message tag leaves room for
/// when each segment takes `tags_per_segment` tags. At least one.
size_t pipeline_segments(size_t count, size_t segment_elements, size_t tags_per_segment);

/// Which message a segment belongs to: its phase (a step of the algorithm) and, where one phase
/// sends several messages between the same two ranks, which of them.
struct MessageId {
  size_t phase = 0;
  size_t message = 0;
};

/// Cuts the messages of one collective call into segments of at most `segment_elements` and gives
/// every segment a tag of its own below 2^24, packed from (phase, message, segment index).
/// Segments are balanced parts of their message, so sender and receiver, who both know a
/// message's length, cut it alike; where tags would run out, segments grow instead.
class MessageSegments {
 public:
  /// `largest_message` (elements) must be the same on every rank, a function of the count and the
  /// rank count alone, since it fixes how many segment numbers each message may use.
  MessageSegments(size_t largest_message, size_t segment_elements, size_t phases, size_t messages_per_phase = 1);

  /// How many segments a message of `elements` elements is cut into (at least one).
  size_t segments(size_t elements) const;
  /// Segment `index` of `message`.
  Span segment(Span message, size_t index) const { return balanced_part(message, segments(message.count), index); }
  /// No segment of any message is longer: the size of a receive slot.
  size_t largest_segment() const { return largest_segment_; }
  uint32_t tag(MessageId id, size_t segment) const;

 private:
  size_t segment_elements_, messages_per_phase_, max_segments_, largest_segment_;
};

}  // namespace cclab
