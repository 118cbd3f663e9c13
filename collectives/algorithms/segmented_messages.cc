#include "algorithms/segmented_messages.h"

#include "algorithms/regions.h"

namespace cclab {

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
