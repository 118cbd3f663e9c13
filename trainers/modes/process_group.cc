#include "modes/process_group.h"

#include "cclab/comm.h"
#include "cclab/error.h"
#include "cclab/simulator.h"
#include "cclab/trace.h"
#include "modes/mode.h"

namespace cclab::train {
namespace {

constexpr uint32_t kPointToPoint = 0xFFFF;

Topology group_topology(const Comm& comm, const std::vector<int>& members) {
  Topology topology;
  for (int member : members) topology.node_of_rank.push_back(comm.topology().node_of_rank.at(size_t(member)));
  return topology;
}

}  // namespace

std::vector<int> every_rank(const Comm& comm) {
  std::vector<int> members(size_t(comm.size()), 0);
  for (int r = 0; r < comm.size(); ++r) members[size_t(r)] = r;
  return members;
}

ProcessGroup::ProcessGroup(Comm& comm, std::vector<int> members, unsigned id, PeerMemory* peers)
    : transport_(comm.transport(), std::move(members)),
      topology_(group_topology(comm, transport_.members())),
      algorithm_(peers ? "direct" : "ring"),
      executor_(transport_, peers),
      timeout_s_(comm.timeout_s()),
      id_(id) {
  if (id == 0 || id > 255) throw Error("process group ids are 1..255");
  // PeerMemory numbers the peers as the Comm does.
  if (peers && transport_.members() != every_rank(comm))
    throw Error("a process group reads peers' memory only when it holds every rank, in order");
}

ProcessGroup::Traffic ProcessGroup::total() const {
  const TrafficCounters& counters = transport_.counters();
  Traffic traffic{double(counters.total_bytes_sent()), double(counters.total_bytes_received()), 0, 0};
  for (uint64_t messages : counters.messages_sent) traffic.messages_sent += double(messages);
  for (uint64_t messages : counters.messages_received) traffic.messages_received += double(messages);
  return traffic;
}

ProcessGroup::Traffic ProcessGroup::traffic() const {
  const Traffic all = total();
  return {all.bytes_sent - uncounted_.bytes_sent, all.bytes_received - uncounted_.bytes_received,
          all.messages_sent - uncounted_.messages_sent, all.messages_received - uncounted_.messages_received};
}

ProcessGroup::Uncounted::~Uncounted() {
  const Traffic after = group_.total();
  group_.uncounted_.bytes_sent += after.bytes_sent - before_.bytes_sent;
  group_.uncounted_.bytes_received += after.bytes_received - before_.bytes_received;
  group_.uncounted_.messages_sent += after.messages_sent - before_.messages_sent;
  group_.uncounted_.messages_received += after.messages_received - before_.messages_received;
}

Deadline ProcessGroup::deadline() const { return Deadline::after(timeout_s_); }

uint64_t ProcessGroup::next_sequence() {
  const uint32_t call = calls_;
  calls_ = (calls_ + 1) % kPointToPoint;
  return (uint64_t{id_} << 16) | call;
}

ProcessGroup::Compiled& ProcessGroup::compiled(Collective collective, size_t count, bool inplace) {
  std::unique_ptr<Compiled>& entry = compiled_[{collective, count, inplace}];
  if (!entry) {
    const Algorithm* algorithm = find_algorithm(collective, algorithm_);
    if (!algorithm)
      throw Error("this build has no " + std::string(algorithm_) + " " + std::string(collective_name(collective)));
    CollectiveArgs args;
    args.collective = collective;
    // allgather and reduce_scatter count the whole array (algorithm.h); callers give a block.
    args.count = collective == Collective::allreduce ? count : count * size_t(size());
    args.dtype = DataType::f32;
    args.op = ReduceOp::sum;
    args.inplace = inplace || collective == Collective::allreduce;
    entry = std::make_unique<Compiled>(Compiled{CompiledSchedule(algorithm->build(topology_, rank(), args)),
                                                predict_traffic(*algorithm, topology_, args).max_bytes_sent});
  }
  return *entry;
}

size_t ProcessGroup::predicted_sent_bytes(Collective collective, size_t count) {
  return size() == 1 ? 0 : compiled(collective, count).predicted_sent_bytes;
}

double textbook_sent_bytes(Collective collective, size_t count, int ranks) {
  const double n = ranks, bytes = double(count * sizeof(float));
  return collective == Collective::allreduce ? 2 * (n - 1) / n * bytes : (n - 1) * bytes;
}

// A traced communication call: what it was and how many bytes of this rank's it covered.
static void trace_bytes(TraceSpan& span, size_t count) {
  if (span) span.arg("bytes", double(count * sizeof(float)));
}

void ProcessGroup::allreduce(float* data, size_t count) {
  if (size() == 1 || count == 0) return;
  TraceSpan span("comm", "allreduce");
  trace_bytes(span, count);
  executor_.run(compiled(Collective::allreduce, count).schedule, {data, data}, DataType::f32, ReduceOp::sum,
                next_sequence(), deadline());
}

void ProcessGroup::allgather(const float* block, float* whole, size_t block_count) {
  if (size() == 1) {
    std::copy(block, block + block_count, whole);
    return;
  }
  TraceSpan span("comm", "allgather");
  trace_bytes(span, block_count * size_t(size()));
  executor_.run(compiled(Collective::allgather, block_count).schedule, {block, whole}, DataType::f32, ReduceOp::sum,
                next_sequence(), deadline());
}

void ProcessGroup::reduce_scatter(const float* whole, float* block, size_t block_count) {
  if (size() == 1) {
    std::copy(whole, whole + block_count, block);
    return;
  }
  TraceSpan span("comm", "reduce_scatter");
  trace_bytes(span, block_count * size_t(size()));
  executor_.run(compiled(Collective::reduce_scatter, block_count).schedule, {whole, block}, DataType::f32,
                ReduceOp::sum, next_sequence(), deadline());
}

std::unique_ptr<PendingCollective> ProcessGroup::start_allreduce(float* data, size_t count) {
  TraceSpan span("comm", "start allreduce");
  trace_bytes(span, count);
  return executor_.start(compiled(Collective::allreduce, count).schedule, {data, data}, DataType::f32, ReduceOp::sum,
                         next_sequence());
}

std::unique_ptr<PendingCollective> ProcessGroup::start_reduce_scatter(float* whole, size_t block_count,
                                                                     SumConsumer consume) {
  TraceSpan span("comm", "start reduce_scatter");
  trace_bytes(span, block_count * size_t(size()));
  float* block = whole + size_t(rank()) * block_count;
  CompiledSchedule& schedule = compiled(Collective::reduce_scatter, block_count, true).schedule;
  if (consume) schedule.find_consumed_reductions();
  return executor_.start(schedule, {whole, block}, DataType::f32, ReduceOp::sum, next_sequence(), std::move(consume));
}

std::unique_ptr<PendingCollective> ProcessGroup::start_allgather(float* whole, size_t block_count) {
  TraceSpan span("comm", "start allgather");
  trace_bytes(span, block_count * size_t(size()));
  const float* block = whole + size_t(rank()) * block_count;
  return executor_.start(compiled(Collective::allgather, block_count, true).schedule, {block, whole}, DataType::f32,
                         ReduceOp::sum, next_sequence());
}

RequestPtr ProcessGroup::isend(int peer, const float* data, size_t count, uint32_t message) {
  TraceSpan span("comm", "post send");
  trace_bytes(span, count);
  return transport_.send(peer, data, count * sizeof(float),
                         message_tag((uint64_t{id_} << 16) | kPointToPoint, message & 0xFFFFFF));
}

RequestPtr ProcessGroup::irecv(int peer, float* data, size_t count, uint32_t message) {
  TraceSpan span("comm", "post recv");
  trace_bytes(span, count);
  return transport_.recv(peer, data, count * sizeof(float),
                         message_tag((uint64_t{id_} << 16) | kPointToPoint, message & 0xFFFFFF));
}

ModeTraffic traffic_of(std::initializer_list<const ProcessGroup*> forward,
                       std::initializer_list<const ProcessGroup*> backward,
                       std::initializer_list<const ProcessGroup*> grad_sync,
                       std::initializer_list<const ProcessGroup*> push,
                       std::initializer_list<const ProcessGroup*> pull) {
  ModeTraffic sum;
  const auto add = [&sum](std::initializer_list<const ProcessGroup*> groups, double PhaseCounts::*phase) {
    for (const ProcessGroup* group : groups) {
      const ProcessGroup::Traffic traffic = group->traffic();
      sum.bytes_sent.*phase += traffic.bytes_sent;
      sum.messages_sent.*phase += traffic.messages_sent;
      sum.bytes_received += traffic.bytes_received;
      sum.messages_received += traffic.messages_received;
    }
  };
  add(forward, &PhaseCounts::forward);
  add(backward, &PhaseCounts::backward);
  add(grad_sync, &PhaseCounts::grad_sync);
  add(push, &PhaseCounts::push);
  add(pull, &PhaseCounts::pull);
  return sum;
}

}  // namespace cclab::train
