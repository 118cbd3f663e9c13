// Writing a Schedule in program order and letting the dependencies follow from the memory each
// step touches, so that algorithms composed of several stages (a reduce inside a node, then a ring
// between nodes, then a broadcast) need no hand-kept lists of step indices between the stages.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/schedule.h"

namespace cclab {

class ScheduleWriter;

/// `slots` equal scratch regions handed out in rotation, for messages that are reduced on
/// arrival. A slot is reused only after the step that read it (the writer sees the hazard), which
/// bounds the receives outstanding in one stage to `slots`. Scratch is reserved on first use, so
/// a rank that never receives into these slots reserves none.
class ReceiveSlots {
 public:
  ReceiveSlots(ScheduleWriter& writer, size_t slots, size_t slot_elements)
      : writer_(writer), slots_(std::max<size_t>(1, slots)), slot_elements_(slot_elements) {}
  /// The first `count` (at most slot_elements) elements of the next slot.
  Region next(size_t count);

 private:
  ScheduleWriter& writer_;
  size_t slots_;
  size_t slot_elements_;
  std::optional<size_t> base_;  // scratch offset of slot 0, once reserved
  size_t next_slot_ = 0;
};

/// Appends steps to a Schedule and gives each step the dependencies that order it after every
/// earlier step it conflicts with: a step waits for the last earlier writer of any element it
/// reads or writes and, when it writes, for every earlier reader since that write. This is exactly
/// the ordering the simulator's race check demands, with program order deciding the direction,
/// and nothing more, so independent stages of different segments still overlap in the executor.
/// In place, input and output are one buffer (at the offsets inplace_offsets gives), and the
/// writer treats them as such.
/// Transfers and reductions of zero elements are left out: both sides of a transfer compute the
/// same count, so they skip it together.
class ScheduleWriter {
 public:
  ScheduleWriter(const CollectiveArgs& args, int ranks, int rank);

  void send(int peer, uint32_t tag, Region source);
  void recv(int peer, uint32_t tag, Region target);
  void reduce(Region target, Region source, Region operand, bool finalize);
  void copy(Region target, Region source);
  void expose(int peer, uint32_t tag, Region source);
  void read(int peer, uint32_t tag, Region target);
  void read_reduce(int peer, uint32_t tag, Region target, Region source, bool finalize);

  /// Reserves `count` elements of scratch and returns the offset of the first.
  size_t reserve_scratch(size_t count);

  /// The schedule written so far.
  Schedule finish() &&;

 private:
  // Per element range of one storage: the last step that wrote it and the steps that read it since.
  struct Interval {
    size_t end;
    std::optional<uint32_t> writer;
    std::vector<uint32_t> readers;
  };
  using IntervalMap = std::map<size_t, Interval>;  // keyed by first element; disjoint
  struct Access {
    Region region;
    bool writes;
  };

  // The steps this one must follow: the last writer of what it touches, and for what it writes the
  // readers since.
  std::vector<uint32_t> dependencies(std::initializer_list<Access> accesses);
  // Records step `index` as the last reader or writer of what it touches.
  void record(uint32_t index, std::initializer_list<Access> accesses);
  // The storage a region lives in and its first element there.
  std::pair<IntervalMap*, size_t> locate(const Region& region);
  static void split_at(IntervalMap& intervals, size_t at);

  bool inplace_;
  InplaceOffsets inplace_offsets_;
  std::array<IntervalMap, 3> storages_;  // input (and output in place), output, scratch
  Schedule schedule_;
};

}  // namespace cclab
