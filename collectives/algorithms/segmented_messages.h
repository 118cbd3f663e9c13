// Whole messages sent as their pipeline segments (patterns/message_segments.h), each segment a
// transfer with a tag of its own, for algorithms whose messages change length from step to step
// (recursive halving and doubling, the halves of a double binary tree). They write through a
// ScheduleWriter, so a segment of the next step waits only for the segments of the last one that
// overlap it.
#pragma once

#include "cclab/schedule.h"
#include "patterns/message_segments.h"
#include "schedule/schedule_writer.h"

namespace cclab {

/// Sends `source` to `peer` as the segments of message `id`.
void send_segments(ScheduleWriter& writer, const MessageSegments& segments, int peer, MessageId id, Region source);
/// Receives message `id` from `peer` into `target`, segment by segment.
void recv_segments(ScheduleWriter& writer, const MessageSegments& segments, int peer, MessageId id, Region target);
/// target = mine op (message `id` from `peer`): each segment lands in the next of `slots` and is
/// reduced from there; `finalize` marks these reductions as the ones completing their elements.
void recv_reduce_segments(ScheduleWriter& writer, const MessageSegments& segments, ReceiveSlots& slots, int peer,
                          MessageId id, Region target, Region mine, bool finalize);

}  // namespace cclab
