// Whole messages cut into pipeline segments, each segment a transfer with a tag of its own, for
// algorithms whose messages change length from step to step (recursive halving and doubling, the
// halves of a double binary tree). They write through a ScheduleWriter, so a segment of the next
// step waits only for the segments of the last one that overlap it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "cclab/schedule.h"
#include "patterns/fragments.h"
#include "patterns/partition.h"
#include "patterns/schedule_writer.h"

namespace cclab {

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

/// The elements `span` of `buffer`.
Region region_of(BufferKind buffer, Span span);
/// The part `within` of `region`, counted from the region's first element.
Region subregion(Region region, Span within);

/// Sends `source` to `peer` as the segments of message `id`.
void send_segments(ScheduleWriter& writer, const MessageSegments& segments, int peer, MessageId id, Region source);
/// Receives message `id` from `peer` into `target`, segment by segment.
void recv_segments(ScheduleWriter& writer, const MessageSegments& segments, int peer, MessageId id, Region target);
/// target = mine op (message `id` from `peer`): each segment lands in the next of `slots` and is
/// reduced from there; `finalize` marks these reductions as the ones completing their elements.
void recv_reduce_segments(ScheduleWriter& writer, const MessageSegments& segments, ReceiveSlots& slots, int peer,
                          MessageId id, Region target, Region mine, bool finalize);

}  // namespace cclab

namespace cclab {

struct PowerOfTwoFold;

/// The edges of MPICH's fold for a whole-array allreduce over `fold`'s power-of-two core. A rank
/// that sits out hands its input to its partner in `fold_phase`, gets the result back in
/// `unfold_phase` and is done: nullopt. A core member gets the region holding its contribution:
/// its input, or its output where the absorbed partner's input was added to it.
std::optional<Region> fold_in(ScheduleWriter& writer, const MessageSegments& segments, ReceiveSlots& slots,
                              const PowerOfTwoFold& fold, int rank, size_t fold_phase, size_t unfold_phase,
                              Region input, Region output);
/// After the core finished `output`: a rank that absorbed a partner sends it the result.
void fold_out(ScheduleWriter& writer, const MessageSegments& segments, const PowerOfTwoFold& fold, int rank,
              size_t unfold_phase, Region output);

}  // namespace cclab
