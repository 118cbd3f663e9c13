// Consumed sums (cclab/host_executor.h, SumConsumer): which final reductions a caller may take in
// place of their sums, and the direct reduce-scatter handing every element of a rank's block to the
// consumer exactly once, on ranks that are threads reading each other's memory.
#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/error.h"
#include "cclab/host_executor.h"
#include "schedule/schedule_writer.h"
#include "thread_ranks.h"

namespace cclab {
namespace {

// In place, as data mode sums its gradients (the other fields: f32, sum).
CollectiveArgs reduce_scatter_args(size_t count) {
  return {.collective = Collective::reduce_scatter, .count = count, .inplace = true};
}

TEST(ConsumedSums, OnlyFinalReductionsIntoTheOutputThatNothingReadsAgain) {
  CollectiveArgs args;
  args.count = 64;
  ScheduleWriter writer(args, 2, 0);
  writer.reduce({BufferKind::output, 0, 16}, {BufferKind::input, 0, 16}, {BufferKind::input, 16, 16}, true);  // yes
  writer.reduce({BufferKind::output, 16, 16}, {BufferKind::input, 0, 16}, {BufferKind::input, 32, 16}, true);
  writer.send(1, 0, {BufferKind::output, 20, 4});  // reads the second sum again
  writer.reduce({BufferKind::output, 32, 16}, {BufferKind::input, 0, 16}, {BufferKind::input, 48, 16}, false);
  CompiledSchedule compiled(std::move(writer).finish());
  compiled.find_consumed_reductions();
  std::vector<bool> consumed;
  for (uint32_t i = 0; i < compiled.schedule().steps.size(); ++i) consumed.push_back(compiled.consumes(i));
  EXPECT_EQ(consumed, (std::vector<bool>{true, false, false, false}));
  EXPECT_FALSE(compiled.every_reduction_consumable());

  // The direct reduce-scatter reads none of its sums again, on any rank count; a ring allreduce
  // sends every one on.
  for (int ranks : {2, 3, 5}) {
    CompiledSchedule direct(find_algorithm(Collective::reduce_scatter, "direct")
                                ->build(Topology::single_node(ranks), 1, reduce_scatter_args(size_t(ranks) * 1001)));
    direct.find_consumed_reductions();
    EXPECT_TRUE(direct.every_reduction_consumable()) << ranks << " ranks";
  }
  CollectiveArgs allreduce = reduce_scatter_args(3000);
  allreduce.collective = Collective::allreduce;
  CompiledSchedule ring(find_algorithm(Collective::allreduce, "ring")->build(Topology::single_node(3), 0, allreduce));
  ring.find_consumed_reductions();
  EXPECT_FALSE(ring.every_reduction_consumable());
}

// Every rank sums its block of `whole` from every rank's, in place; the consumer sees each element's
// last two operands once, and they add up to the element's sum over the ranks.
TEST(ConsumedSums, DirectReduceScatterHandsEveryElementOfTheBlockToTheConsumerOnce) {
  for (int ranks : {2, 3}) {
    const std::string failure = run_ranks(ranks, 0, [](Comm& comm) {
      if (!comm.peer_memory()) GTEST_SKIP() << comm.why_no_peer_memory();
      const int n = comm.size(), me = comm.rank();
      const size_t block = 70001;  // several chunks, an odd length
      // Registered, so peers read it in place, as data mode's gradients.
      std::string why_not;
      const std::shared_ptr<std::byte> memory =
          comm.peer_memory()->allocate(comm, size_t(n) * block * sizeof(float), &why_not);
      ASSERT_NE(memory, nullptr) << why_not;
      const std::span<float> whole(reinterpret_cast<float*>(memory.get()), size_t(n) * block);
      for (size_t i = 0; i < whole.size(); ++i) whole[i] = float(me * 3 + int(i % 1000));
      CompiledSchedule compiled(find_algorithm(Collective::reduce_scatter, "direct")
                                    ->build(comm.topology(), me, reduce_scatter_args(whole.size())));
      HostExecutor executor(comm.transport(), comm.peer_memory());
      // Refused until the schedule's consumable reductions are known.
      EXPECT_THROW(executor.start(compiled, {whole.data(), whole.data() + size_t(me) * block}, DataType::f32,
                                  ReduceOp::sum, 1, [](const std::byte*, const std::byte*, size_t, size_t) {}),
                   Error);
      compiled.find_consumed_reductions();
      std::vector<float> sums(block, -1);
      std::vector<int> seen(block, 0);
      auto call =
          executor.start(compiled, {whole.data(), whole.data() + size_t(me) * block}, DataType::f32, ReduceOp::sum, 2,
                         [&](const std::byte* source, const std::byte* operand, size_t count, size_t offset) {
                           const auto* a = reinterpret_cast<const float*>(source);
                           const auto* b = reinterpret_cast<const float*>(operand);
                           for (size_t i = 0; i < count; ++i) {
                             sums[offset + i] = a[i] + b[i];
                             ++seen[offset + i];
                           }
                         });
      call->wait(Deadline::after(10));
      for (size_t j = 0; j < block; ++j) {
        const size_t i = size_t(me) * block + j;
        const float expected = float(3 * (n * (n - 1) / 2) + n * int(i % 1000));
        ASSERT_EQ(seen[j], 1) << "element " << j << " of rank " << me << "'s block";
        ASSERT_EQ(sums[j], expected) << "element " << j << " of rank " << me << "'s block";
      }
    });
    EXPECT_EQ(failure, "") << ranks << " ranks";
  }
}

}  // namespace
}  // namespace cclab
