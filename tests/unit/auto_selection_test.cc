// `--impl auto` on ranks as threads: a candidate the model rates clearly ahead runs without a probe;
// candidates it cannot tell apart are timed, and every rank picks the same one and gets the right sum.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/implementation.h"
#include "check.h"
#include "thread_ranks.h"

namespace cclab {
namespace {

CollectiveArgs allreduce_of(size_t count) {
  CollectiveArgs args;
  args.collective = Collective::allreduce;
  args.count = count;
  return args;
}

// Runs `calls` checked allreduces through `impl`; returns the wrong elements.
size_t wrong_after_runs(Implementation& impl, const CollectiveArgs& args, Comm& comm, int calls) {
  std::vector<float> input(args.count), output(args.count);
  size_t wrong = 0;
  for (int call = 0; call < calls; ++call) {
    fill_check_input(input.data(), args.count, args.dtype, args.op, comm.rank());
    impl.run(input.data(), output.data(), Deadline::after(10));
    wrong += count_wrong_allreduce(output.data(), args.count, args.dtype, args.op, comm.size());
  }
  return wrong;
}

TEST(AutoSelection, TakesTheModelsPickWhenNoOtherIsPredictedClose) {
  // Latency only: recursive doubling's one exchange on 2 ranks against every other's two steps.
  CostProfile profile;
  profile.cached.intra_node.alpha_us = profile.streaming.intra_node.alpha_us = 100;
  const std::string failure = run_ranks(2, 0, [&](Comm& comm) {
    auto impl = make_implementation(Collective::allreduce, "auto", comm, profile);
    const CollectiveArgs args = allreduce_of(1000);
    impl->prepare(args);
    const std::optional<AutoChoice> choice = impl->choice();
    ASSERT_TRUE(choice.has_value());
    EXPECT_EQ(choice->algorithm, "recursive_doubling");
    EXPECT_EQ(choice->by, "model");
    EXPECT_TRUE(choice->probe_us.empty());
    EXPECT_EQ(wrong_after_runs(*impl, args, comm, 2), 0u);
  });
  EXPECT_EQ(failure, "");
}

TEST(AutoSelection, TimesTheCandidatesTheModelCannotTellApartAndEveryRankAgrees) {
  const CostProfile free_everything;  // every prediction 0: no candidate stands out
  constexpr int kRanks = 3;
  const auto& registry = algorithm_registry();
  const auto allreduce_algorithms = size_t(std::count_if(
      registry.begin(), registry.end(), [](const Algorithm& a) { return a.collective == Collective::allreduce; }));
  std::vector<AutoChoice> choices(kRanks);
  const std::string failure = run_ranks(kRanks, 0, [&](Comm& comm) {
    auto impl = make_implementation(Collective::allreduce, "auto", comm, free_everything);
    for (size_t count : {size_t{0}, size_t{1}, size_t{4099}}) {
      const CollectiveArgs args = allreduce_of(count);
      impl->prepare(args);
      EXPECT_EQ(impl->choice().value().by, "model") << "the probe runs in the first call, on its arrays";
      EXPECT_EQ(wrong_after_runs(*impl, args, comm, 2), 0u) << impl->choice()->algorithm << " at count " << count;
      const AutoChoice choice = impl->choice().value();
      EXPECT_EQ(choice.by, "measured");
      EXPECT_EQ(choice.probe_us.size(), allreduce_algorithms) << "every allreduce algorithm of the registry";
      for (const auto& [name, us] : choice.probe_us) EXPECT_GE(us, 0) << name;
      choices[size_t(comm.rank())] = choice;
    }
  });
  ASSERT_EQ(failure, "");
  for (int rank = 1; rank < kRanks; ++rank) {
    EXPECT_EQ(choices[size_t(rank)].algorithm, choices[0].algorithm);
    EXPECT_EQ(choices[size_t(rank)].probe_us, choices[0].probe_us) << "each decides from the same gathered times";
  }
}

TEST(AutoSelection, ProbesCallsOfMillisecondsInRoundsAndEveryRankAgrees) {
  // Every message costs a millisecond: the finalists' calls are long ones, probed in rounds of
  // turns with a barrier before each turn's timed calls. Every rank must make the same calls and
  // barriers, or the probe hangs, and every rank must decide the same.
  CostProfile slow_messages;
  slow_messages.cached.intra_node = {1000.0, 0.0};
  slow_messages.streaming = slow_messages.cached;
  constexpr int kRanks = 3;
  std::vector<AutoChoice> choices(kRanks);
  const std::string failure = run_ranks(kRanks, 0, [&](Comm& comm) {
    auto impl = make_implementation(Collective::allreduce, "auto", comm, slow_messages);
    const CollectiveArgs args = allreduce_of(4099);
    impl->prepare(args);
    EXPECT_EQ(wrong_after_runs(*impl, args, comm, 2), 0u) << impl->choice()->algorithm;
    choices[size_t(comm.rank())] = impl->choice().value();
  });
  ASSERT_EQ(failure, "");
  EXPECT_EQ(choices[0].by, "measured");
  EXPECT_GE(choices[0].probe_us.size(), 2u);
  for (int rank = 1; rank < kRanks; ++rank) {
    EXPECT_EQ(choices[size_t(rank)].algorithm, choices[0].algorithm);
    EXPECT_EQ(choices[size_t(rank)].probe_us, choices[0].probe_us);
  }
}

TEST(AutoSelection, AnInPlaceProbeLeavesTheCallersDataAlone) {
  // The probe's calls would add the array up again and again; in place they run on auto's own buffer.
  const CostProfile free_everything;
  const std::string failure = run_ranks(2, 0, [&](Comm& comm) {
    auto impl = make_implementation(Collective::allreduce, "auto", comm, free_everything);
    CollectiveArgs args = allreduce_of(4099);
    args.inplace = true;
    impl->prepare(args);
    std::vector<float> data(args.count);
    fill_check_input(data.data(), args.count, args.dtype, args.op, comm.rank());
    impl->run(data.data(), data.data(), Deadline::after(10));
    EXPECT_EQ(impl->choice()->by, "measured");
    EXPECT_EQ(count_wrong_allreduce(data.data(), args.count, args.dtype, args.op, comm.size()), 0u);
  });
  EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace cclab
