#include "schedule/schedule_writer.h"

#include <algorithm>

#include "cclab/error.h"

namespace cclab {

Region ReceiveSlots::next(size_t count) {
  if (count > slot_elements_)
    throw Error("receive slot of " + std::to_string(slot_elements_) + " elements asked for " + std::to_string(count));
  if (!base_) base_ = writer_.reserve_scratch(slots_ * slot_elements_);
  const size_t slot = next_slot_++ % slots_;
  return {BufferKind::scratch, *base_ + slot * slot_elements_, count};
}

ScheduleWriter::ScheduleWriter(const CollectiveArgs& args, int ranks, int rank)
    : inplace_(args.inplace), inplace_offsets_(inplace_offsets(args.collective, args.count, ranks, rank)) {}

void ScheduleWriter::send(int peer, uint32_t tag, Region source) {
  if (source.count == 0) return;
  const auto accesses = {Access{source, false}};
  record(schedule_.send(peer, tag, source, dependencies(accesses)), accesses);
}

void ScheduleWriter::recv(int peer, uint32_t tag, Region target) {
  if (target.count == 0) return;
  const auto accesses = {Access{target, true}};
  record(schedule_.recv(peer, tag, target, dependencies(accesses)), accesses);
}

void ScheduleWriter::reduce(Region target, Region source, Region operand, bool finalize) {
  if (target.count == 0) return;
  const auto accesses = {Access{source, false}, Access{operand, false}, Access{target, true}};
  record(schedule_.reduce(target, source, operand, finalize, dependencies(accesses)), accesses);
}

void ScheduleWriter::copy(Region target, Region source) {
  if (target.count == 0) return;
  const auto accesses = {Access{source, false}, Access{target, true}};
  record(schedule_.copy(target, source, dependencies(accesses)), accesses);
}

void ScheduleWriter::expose(int peer, uint32_t tag, Region source) {
  if (source.count == 0) return;
  const auto accesses = {Access{source, false}};
  record(schedule_.expose(peer, tag, source, dependencies(accesses)), accesses);
}

void ScheduleWriter::read(int peer, uint32_t tag, Region target) {
  if (target.count == 0) return;
  const auto accesses = {Access{target, true}};
  record(schedule_.read(peer, tag, target, dependencies(accesses)), accesses);
}

void ScheduleWriter::read_reduce(int peer, uint32_t tag, Region target, Region source, bool finalize) {
  if (target.count == 0) return;
  const auto accesses = {Access{source, false}, Access{target, true}};
  record(schedule_.read_reduce(peer, tag, target, source, finalize, dependencies(accesses)), accesses);
}

size_t ScheduleWriter::reserve_scratch(size_t count) {
  const size_t offset = schedule_.scratch_count;
  schedule_.scratch_count += count;
  return offset;
}

Schedule ScheduleWriter::finish() && { return std::move(schedule_); }

std::pair<ScheduleWriter::IntervalMap*, size_t> ScheduleWriter::locate(const Region& region) {
  switch (region.buffer) {
    case BufferKind::input: return {&storages_[0], (inplace_ ? inplace_offsets_.input : 0) + region.offset};
    case BufferKind::output:
      if (inplace_) return {&storages_[0], inplace_offsets_.output + region.offset};
      return {&storages_[1], region.offset};
    case BufferKind::scratch: break;
  }
  return {&storages_[2], region.offset};
}

void ScheduleWriter::split_at(IntervalMap& intervals, size_t at) {
  auto containing = intervals.upper_bound(at);
  if (containing == intervals.begin()) return;
  --containing;
  if (containing->first < at && at < containing->second.end) {
    Interval tail = containing->second;
    containing->second.end = at;
    intervals.emplace(at, std::move(tail));
  }
}

std::vector<uint32_t> ScheduleWriter::dependencies(std::initializer_list<Access> accesses) {
  std::vector<uint32_t> deps;
  for (const Access& access : accesses) {
    const auto [intervals, first] = locate(access.region);
    const size_t end = first + access.region.count;
    auto interval = intervals->upper_bound(first);
    if (interval != intervals->begin() && std::prev(interval)->second.end > first) --interval;
    for (; interval != intervals->end() && interval->first < end; ++interval) {
      if (interval->second.writer) deps.push_back(*interval->second.writer);
      if (access.writes) deps.insert(deps.end(), interval->second.readers.begin(), interval->second.readers.end());
    }
  }
  std::sort(deps.begin(), deps.end());
  deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
  return deps;
}

void ScheduleWriter::record(uint32_t index, std::initializer_list<Access> accesses) {
  // Reads first, so a step that reads and writes the same elements ends up as their writer alone.
  for (bool writes : {false, true}) {
    for (const Access& access : accesses) {
      if (access.writes != writes || access.region.count == 0) continue;
      const auto [intervals, first] = locate(access.region);
      const size_t end = first + access.region.count;
      split_at(*intervals, first);
      split_at(*intervals, end);
      size_t cursor = first;
      auto interval = intervals->lower_bound(first);
      while (cursor < end) {
        if (interval == intervals->end() || interval->first > cursor) {
          // Never touched before: a new interval up to the next recorded one.
          const size_t gap_end = interval == intervals->end() ? end : std::min(end, interval->first);
          Interval fresh = writes ? Interval{gap_end, index, {}} : Interval{gap_end, std::nullopt, {index}};
          intervals->emplace_hint(interval, cursor, std::move(fresh));
          cursor = gap_end;
          continue;
        }
        if (writes) {
          interval->second.writer = index;
          interval->second.readers.clear();
        } else {
          interval->second.readers.push_back(index);
        }
        cursor = interval->second.end;
        ++interval;
      }
    }
  }
}

}  // namespace cclab
