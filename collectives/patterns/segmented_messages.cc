#include "patterns/segmented_messages.h"

#include <algorithm>

#include "cclab/error.h"
#include "patterns/recursive.h"

namespace cclab {
namespace {

// Every message tag must fit the 24-bit step field of the wire tag.
constexpr size_t kTagSpace = size_t{1} << 24;

}  // namespace

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

Region region_of(BufferKind buffer, Span span) { return {buffer, span.offset, span.count}; }

Region subregion(Region region, Span within) { return {region.buffer, region.offset + within.offset, within.count}; }

void send_segments(ScheduleWriter& writer, const MessageSegments& segments, int peer, MessageId id, Region source) {
  for (size_t index = 0; index < segments.segments(source.count); ++index)
    writer.send(peer, segments.tag(id, index), subregion(source, segments.segment({0, source.count}, index)));
}

void recv_segments(ScheduleWriter& writer, const MessageSegments& segments, int peer, MessageId id, Region target) {
  for (size_t index = 0; index < segments.segments(target.count); ++index)
    writer.recv(peer, segments.tag(id, index), subregion(target, segments.segment({0, target.count}, index)));
}

void recv_reduce_segments(ScheduleWriter& writer, const MessageSegments& segments, ReceiveSlots& slots, int peer,
                          MessageId id, Region target, Region mine, bool finalize) {
  for (size_t index = 0; index < segments.segments(target.count); ++index) {
    const Span part = segments.segment({0, target.count}, index);
    const Region received = slots.next(part.count);
    writer.recv(peer, segments.tag(id, index), received);
    writer.reduce(subregion(target, part), subregion(mine, part), received, finalize);
  }
}

}  // namespace cclab

namespace cclab {

std::optional<Region> fold_in(ScheduleWriter& writer, const MessageSegments& segments, ReceiveSlots& slots,
                              const PowerOfTwoFold& fold, int rank, size_t fold_phase, size_t unfold_phase,
                              Region input, Region output) {
  if (fold.sits_out(rank)) {
    send_segments(writer, segments, rank + 1, {fold_phase}, input);
    recv_segments(writer, segments, rank + 1, {unfold_phase}, output);
    return std::nullopt;
  }
  if (!fold.absorbs(rank)) return input;
  recv_reduce_segments(writer, segments, slots, rank - 1, {fold_phase}, output, input, false);
  return output;
}

void fold_out(ScheduleWriter& writer, const MessageSegments& segments, const PowerOfTwoFold& fold, int rank,
              size_t unfold_phase, Region output) {
  if (fold.absorbs(rank)) send_segments(writer, segments, rank - 1, {unfold_phase}, output);
}

}  // namespace cclab
