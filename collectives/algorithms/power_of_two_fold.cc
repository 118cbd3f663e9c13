#include "algorithms/power_of_two_fold.h"

#include "algorithms/segmented_messages.h"

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
