// Streaming copies (cclab/streaming_copy.h) and which copies of a schedule may stream: the final
// ones, into the output, that no step reads again.
#include "cclab/streaming_copy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/host_executor.h"
#include "schedule/schedule_writer.h"

namespace cclab {
namespace {

TEST(StreamingCopy, EqualsMemcpyAtEveryAlignmentAndLength) {
  std::vector<std::byte> source(70000), target(70000), expected(70000);
  for (size_t i = 0; i < source.size(); ++i) source[i] = std::byte(i * 131 % 251);
  for (size_t length :
       {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{127}, size_t{4097}, size_t{65536 + 13}})
    for (size_t target_offset = 0; target_offset < 64; target_offset += 7)
      for (size_t source_offset : {size_t{0}, size_t{3}, size_t{16}, size_t{33}}) {
        std::fill(target.begin(), target.end(), std::byte{0xEE});
        expected = target;
        std::memcpy(expected.data() + target_offset, source.data() + source_offset, length);
        streaming_copy(target.data() + target_offset, source.data() + source_offset, length);
        ASSERT_EQ(target, expected) << length << " bytes, target +" << target_offset << ", source +" << source_offset;
      }
}

TEST(StreamingCopy, OnlyCopiesIntoTheOutputThatNothingReadsAgainStream) {
  CollectiveArgs args;
  args.count = 64;
  ScheduleWriter writer(args, 2, 0);
  writer.copy({BufferKind::output, 0, 16}, {BufferKind::input, 0, 16});    // final
  writer.copy({BufferKind::output, 16, 16}, {BufferKind::input, 16, 16});  // sent on below
  writer.send(1, 0, {BufferKind::output, 20, 4});
  writer.read(1, 1, {BufferKind::output, 32, 16});  // final
  writer.read(1, 2, {BufferKind::output, 48, 16});  // reduced below
  writer.reduce({BufferKind::input, 0, 8}, {BufferKind::input, 0, 8}, {BufferKind::output, 56, 8}, false);
  const size_t scratch = writer.reserve_scratch(8);
  writer.copy({BufferKind::scratch, scratch, 8}, {BufferKind::input, 0, 8});  // not the output
  CompiledSchedule compiled(std::move(writer).finish());
  const std::vector<bool> expected = {true, false, false, true, false, false, false};
  for (uint32_t i = 0; i < compiled.schedule().steps.size(); ++i) EXPECT_FALSE(compiled.streams(i)) << i;
  compiled.stream_final_copies(true);
  std::vector<bool> streams;
  for (uint32_t i = 0; i < compiled.schedule().steps.size(); ++i) streams.push_back(compiled.streams(i));
  EXPECT_EQ(streams, expected);
}

// Direct allgather reads every block from its owner into the output and copies its own: nothing
// reads the output again, so every one of them streams.
TEST(StreamingCopy, EveryCopyOfTheDirectAllgatherIsFinal) {
  CollectiveArgs args;
  args.collective = Collective::allgather;
  args.count = 3 << 20;
  CompiledSchedule compiled(find_algorithm(Collective::allgather, "direct")->build(Topology::single_node(3), 0, args));
  compiled.stream_final_copies(true);
  size_t copies = 0;
  for (uint32_t i = 0; i < compiled.schedule().steps.size(); ++i) {
    const StepKind kind = compiled.schedule().steps[i].kind;
    if (kind != StepKind::read && kind != StepKind::copy) continue;
    ++copies;
    EXPECT_TRUE(compiled.streams(i)) << i;
  }
  EXPECT_GT(copies, 2u);
}

}  // namespace
}  // namespace cclab
