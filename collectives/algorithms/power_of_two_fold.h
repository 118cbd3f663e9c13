// The edges of MPICH's fold (PowerOfTwoFold, patterns/recursive.h) around a whole-array allreduce,
// written as segmented messages: the recursive doubling and Rabenseifner allreduces differ in
// what their power-of-two core does, not in how extra ranks join it and get the result back.
#pragma once

#include <cstddef>
#include <optional>

#include "cclab/schedule.h"
#include "patterns/message_segments.h"
#include "patterns/recursive.h"
#include "schedule/schedule_writer.h"

namespace cclab {

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
