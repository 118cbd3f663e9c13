// Parameter-server data parallelism (--mode ps; DESIGN 3.6, 3.7). Workers hold the whole model and
// train on their Shard of every global batch, as in data mode; the parameters are split into
// contiguous ranges, one per server, and the server of a range owns its values and SGD velocity.
// Each step a worker pushes every server its range of the gradient and pulls back that range's
// values, which the server sends once it has applied the update.
//
// Servers are dedicated ranks (--servers S: the last S ranks serve, the others work) or colocated
// (--servers colocated: every rank works and serves its own range, as sharded parameter servers and
// BytePS do; its own range never leaves the process).
//
// Consistency (--sync):
//   sync   the server sums the pushes of every worker for the step, in worker order, and applies one
//          SGD step: the same arithmetic as one process on the global batch (the loss is normalised
//          by the global batch, so the pushes are partial sums of its gradient).
//   async  each push is applied on arrival as a step of its own, and its worker pulls what is current.
//   ssp    as async, but a worker's pull is held back while it is more than --staleness K steps ahead
//          of the slowest worker (stale synchronous parallel).
// A push's staleness is the number of updates its server applied between the values its worker
// computed with and the push; records carry its mean and maximum.
//
// Pacing. Every rank calls train_step once per step. A dedicated server's step serves until it has
// served as many pushes as the workers make in the steps so far; a colocated rank serves while it
// waits for its own pulls, and finish_steps() serves what is left before the epoch's collectives.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "cclab/comm.h"
#include "cclab/error.h"
#include "model/loss.h"
#include "model/optimizer.h"
#include "modes/mode.h"
#include "modes/process_group.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kPushGroupId = 31, kPullGroupId = 32;
constexpr uint32_t kMessageMask = 0xFFFFFF;  // ProcessGroup's point-to-point ids are 24 bits
constexpr uint32_t kResumeMessage = kMessageMask;  // the ranges sent after a resume (steps count from 0)

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// [begin, end) of server s's range of `count` parameters: contiguous, sizes differ by at most one.
std::pair<size_t, size_t> server_range(size_t count, size_t server, size_t servers) {
  return {server * count / servers, (server + 1) * count / servers};
}

class ParameterServer : public ParallelMode {
 public:
  ParameterServer(Comm& comm, const TrainOptions& options, const ModelPlan& plan, Backend& backend)
      : options_(options),
        rank_(comm.rank()),
        ranks_(comm.size()),
        colocated_(options.ps_servers == 0),
        servers_(colocated_ ? size_t(ranks_) : options.ps_servers),
        workers_(colocated_ ? size_t(ranks_) : size_t(ranks_) - options.ps_servers),
        is_worker_(colocated_ || size_t(rank_) < workers_),
        is_server_(colocated_ || size_t(rank_) >= workers_),
        model_(plan.layers, backend, options.seed),
        activations_(model_, is_worker_ ? (options.batch + workers_ - 1) / workers_ : 0),
        classes_(plan.output().elements()),
        push_group_(comm, every_rank(comm), kPushGroupId),
        pull_group_(comm, every_rank(comm), kPullGroupId),
        optimizer_(is_server_ ? own_range().second - own_range().first : 0, float(options.learning_rate),
                   float(options.momentum)),
        yield_when_idle_(comm.transport().yield_when_idle()) {
    const size_t count = model_.parameters().size();
    if (is_server_) {
      const auto [begin, end] = own_range();
      master_.assign(model_.parameters().values().begin() + std::ptrdiff_t(begin),
                     model_.parameters().values().begin() + std::ptrdiff_t(end));
      pushed_.assign(workers_ * master_.size(), 0.0f);
      for (size_t w = 1; w < workers_; ++w) other_pushes_.push_back(pushed(w));
      replies_.assign(workers_ * master_.size(), 0.0f);
      push_receives_.resize(workers_);
      reply_sends_.resize(workers_);
      arrived_.assign(workers_, false);
      pushes_served_.assign(workers_, 0);
      version_pulled_.assign(workers_, 0);
      for (size_t w = 0; w < workers_; ++w) post_push_receive(w);
    }
    if (is_worker_) {
      pull_receives_.resize(servers_);
      push_sends_.resize(servers_);
    }
    // Bytes per step (whole messages, no rounding: the textbook formula is exact here).
    for (size_t s = 0; s < servers_; ++s) {
      const auto [begin, end] = server_range(count, s, servers_);
      const double bytes = double((end - begin) * sizeof(float));
      if (is_worker_ && server_rank(s) != rank_) push_bytes_per_step_ += bytes;
      if (is_server_ && size_t(server_index()) == s)
        for (size_t w = 0; w < workers_; ++w)
          if (int(w) != rank_ || !colocated_) pull_bytes_per_step_ += bytes;
    }
  }

  Shard shard() const override {
    // A dedicated server is a shard past the workers': it loads no samples.
    return {is_worker_ ? size_t(rank_) : workers_, workers_};
  }

  std::string describe() const override {
    const size_t count = model_.parameters().size();
    std::string text = "# parameter server (" + options_.ps_sync;
    if (options_.ps_sync == "ssp") text += ", staleness " + std::to_string(options_.staleness);
    text += "): " + std::to_string(workers_) + " workers, " + std::to_string(servers_) +
            (colocated_
                 ? " colocated servers (each rank serves a range)"
                 : " dedicated servers (ranks " + std::to_string(workers_) + ".." + std::to_string(ranks_ - 1) + ")") +
            "; each server owns a contiguous range of about " + std::to_string(count / servers_) + " of the " +
            std::to_string(count) + " parameters";
    if (options_.straggler_rank >= 0) text += format_straggler();
    return text + "\n";
  }

  StepResult train_step(const StepBatch& batch) override {
    StepResult result;
    if (is_worker_) compute_and_push(batch, result);
    const Deadline deadline = push_group_.deadline();
    Backoff backoff(yield_when_idle_);
    const uint64_t target = served_by_end_of_step();
    while (!(pulls_done() && served_total_ >= target)) {
      if (serve(result) | (push_group_.progress() | pull_group_.progress())) {
        backoff.reset();
        continue;
      }
      if (backoff.expired(deadline)) throw_timeout(deadline);
      backoff.idle();
    }
    finish_pushes(deadline);
    ++step_;
    predicted_.push += push_bytes_per_step_;
    predicted_.pull += pull_bytes_per_step_;
    return result;
  }

  void finish_steps() override {
    if (!is_server_) return;
    const Deadline deadline = push_group_.deadline();
    Backoff backoff(yield_when_idle_);
    StepResult ignored;
    while (served_total_ < uint64_t(step_) * workers_) {
      if (serve(ignored) | push_group_.progress()) {
        backoff.reset();
        continue;
      }
      if (backoff.expired(deadline)) throw_timeout(deadline);
      backoff.idle();
    }
  }

  StepResult evaluate(const StepBatch& batch) override {
    // A dedicated server's shard is empty.
    return evaluate_whole_model(model_, activations_, batch, classes_);
  }

  ModeTraffic traffic() const override { return traffic_of({}, {}, {}, {&push_group_}, {&pull_group_}); }
  PhaseCounts predicted_sent_bytes() const override { return predicted_; }
  PhaseCounts textbook_sent_bytes() const override { return predicted_; }

  // Checkpoints: each server's range and its velocity, one file per rank (a dedicated worker's is
  // empty); the placement is part of the layout, so a resume with other --servers is refused.
  std::span<float> parameters() override { return master_; }
  std::span<float> velocity() override { return optimizer_.velocity(); }
  bool replicated() const override { return false; }
  std::string layout() const override {
    return "servers=" + (colocated_ ? std::string("colocated") : std::to_string(servers_));
  }
  // After a resume the servers hold the checkpoint's ranges: every worker takes them (not a step's
  // traffic), as it would have pulled them in the step the checkpoint was written after.
  void resumed() override {
    ProcessGroup::Uncounted uncounted(pull_group_);
    std::vector<RequestPtr> requests;
    float* values = model_.parameters().values().data();
    if (is_worker_)
      for (size_t s = 0; s < servers_; ++s) {
        if (server_rank(s) == rank_) continue;
        const auto [begin, end] = server_range(model_.parameters().size(), s, servers_);
        requests.push_back(pull_group_.irecv(server_rank(s), values + begin, end - begin, kResumeMessage));
      }
    if (is_server_)
      for (size_t w = 0; w < workers_; ++w) {
        if (colocated_ && int(w) == rank_)
          std::copy(master_.begin(), master_.end(), values + own_range().first);
        else
          requests.push_back(pull_group_.isend(int(w), master_.data(), master_.size(), kResumeMessage));
      }
    const Deadline deadline = pull_group_.deadline();
    for (RequestPtr& request : requests) pull_group_.wait(*request, deadline);
  }

  std::pair<double, double> parameter_sums() const override {
    double sum = 0, abs_sum = 0;
    for (float value : master_) {  // each server's range: every parameter once over the ranks
      sum += value;
      abs_sum += std::fabs(value);
    }
    return {sum, abs_sum};
  }

  Model& local_model() override { return model_; }

  std::optional<Staleness> staleness() const override {
    if (!is_server_) return std::nullopt;
    return staleness_;
  }

 private:
  int server_rank(size_t server) const { return colocated_ ? int(server) : int(workers_ + server); }
  int server_index() const { return colocated_ ? rank_ : rank_ - int(workers_); }
  std::pair<size_t, size_t> own_range() const {
    return server_range(model_.parameters().size(), size_t(server_index()), servers_);
  }
  size_t range_size() const { return master_.size(); }
  float* pushed(size_t worker) { return pushed_.data() + worker * range_size(); }
  float* reply(size_t worker) { return replies_.data() + worker * range_size(); }

  std::string format_straggler() const {
    char text[96];
    std::snprintf(text, sizeof text, "; worker %d computes %.3gx slower (--straggler)", options_.straggler_rank,
                  options_.straggler_factor);
    return text;
  }

  // Pushes served by the end of this step: a dedicated server keeps pace with the workers' steps;
  // sync serves each step whole; a colocated async/ssp rank serves while it waits (finish_steps
  // catches up).
  uint64_t served_by_end_of_step() const {
    if (!is_server_) return 0;
    if (options_.ps_sync == "sync" || !colocated_) return uint64_t(step_ + 1) * workers_;
    return 0;
  }

  // The worker's part of a step: forward, backward (a zero gradient for an empty shard), then each
  // server's range pushed and its pull posted.
  void compute_and_push(const StepBatch& batch, StepResult& result) {
    const auto start = Clock::now();
    ParameterStore& parameters = model_.parameters();
    if (batch.local_size > 0) {
      forward_with_loss(model_, activations_, batch, classes_, result);
      result.forward_s = seconds_since(start);
      const auto backward_start = Clock::now();
      model_.backward(activations_, batch.local_size, BackwardOptions{});
      result.backward_s = seconds_since(backward_start);
    } else {
      parameters.zero_gradients();
    }
    if (rank_ == options_.straggler_rank && options_.straggler_factor > 1) {
      const double compute_s = result.forward_s + result.backward_s;
      std::this_thread::sleep_for(std::chrono::duration<double>(compute_s * (options_.straggler_factor - 1)));
    }
    const auto post_start = Clock::now();
    const uint32_t message = uint32_t(step_) & kMessageMask;
    for (size_t s = 0; s < servers_; ++s) {
      const auto [begin, end] = server_range(parameters.size(), s, servers_);
      if (server_rank(s) == rank_) {  // our own range: a push that never leaves the process
        std::copy_n(parameters.gradients().data() + begin, end - begin, pushed(size_t(rank_)));
        own_push_pending_ = true;
        continue;
      }
      push_sends_[s] = push_group_.isend(server_rank(s), parameters.gradients().data() + begin, end - begin, message);
      pull_receives_[s] = pull_group_.irecv(server_rank(s), parameters.values().data() + begin, end - begin, message);
    }
    pulls_pending_ = true;
    result.comm_s += seconds_since(post_start);
  }

  bool pulls_done() {
    if (!is_worker_ || !pulls_pending_) return true;
    if (own_pull_pending_ || own_push_pending_) return false;
    for (RequestPtr& receive : pull_receives_)
      if (receive && !receive->complete()) return false;
    for (RequestPtr& receive : pull_receives_) receive.reset();
    pulls_pending_ = false;
    return true;
  }

  void finish_pushes(Deadline deadline) {
    for (RequestPtr& send : push_sends_)
      if (send) {
        push_group_.wait(*send, deadline);
        send.reset();
      }
  }

  void post_push_receive(size_t worker) {
    if (colocated_ && int(worker) == rank_) return;  // our own push is copied, not received
    push_receives_[worker] =
        push_group_.irecv(int(worker), pushed(worker), range_size(), uint32_t(pushes_served_[worker]) & kMessageMask);
  }

  // Takes every push that arrived; applies and replies as --sync says. True if anything moved.
  bool serve(StepResult& result) {
    if (!is_server_) return false;
    bool moved = false;
    for (size_t w = 0; w < workers_; ++w) {
      const bool local = colocated_ && int(w) == rank_;
      const bool arrived = local ? own_push_pending_ : push_receives_[w] && push_receives_[w]->complete();
      if (!arrived || arrived_[w]) continue;
      if (local) {
        own_push_pending_ = false;
        own_pull_pending_ = true;
      }
      push_receives_[w].reset();
      arrived_[w] = true;
      moved = true;
      if (options_.ps_sync != "sync") apply_push(w, result);
    }
    if (options_.ps_sync == "sync" && std::all_of(arrived_.begin(), arrived_.end(), [](bool a) { return a; })) {
      apply_summed_pushes(result);
      moved = true;
    }
    if (options_.ps_sync != "sync") moved |= release_replies(result);
    return moved;
  }

  // sync: one SGD step on the sum of every worker's push, in worker order.
  void apply_summed_pushes(StepResult& result) {
    const auto start = Clock::now();
    optimizer_.step_range_summed(master_, std::span<const float>(pushed(0), range_size()), other_pushes_, 0);
    result.update_s += seconds_since(start);
    for (size_t w = 0; w < workers_; ++w) record_staleness(w);
    ++version_;
    for (size_t w = 0; w < workers_; ++w) {
      ++pushes_served_[w];
      ++served_total_;
      arrived_[w] = false;
      send_reply(w, result);
      post_push_receive(w);
    }
  }

  // async, ssp: this worker's push is a step of its own. Its reply waits in release_replies().
  void apply_push(size_t worker, StepResult& result) {
    const auto start = Clock::now();
    optimizer_.step_range(master_, std::span<const float>(pushed(worker), range_size()), 0);
    result.update_s += seconds_since(start);
    record_staleness(worker);
    ++version_;
    ++pushes_served_[worker];
    ++served_total_;
    awaiting_reply_.push_back(worker);
  }

  // ssp holds a worker's reply while it is more than K steps ahead of the slowest worker.
  bool release_replies(StepResult& result) {
    const uint64_t slowest = *std::min_element(pushes_served_.begin(), pushes_served_.end());
    bool moved = false;
    for (auto it = awaiting_reply_.begin(); it != awaiting_reply_.end();) {
      const size_t worker = *it;
      if (options_.ps_sync == "ssp" && pushes_served_[worker] > slowest + options_.staleness) {
        ++it;
        continue;
      }
      arrived_[worker] = false;
      send_reply(worker, result);
      post_push_receive(worker);
      it = awaiting_reply_.erase(it);
      moved = true;
    }
    return moved;
  }

  // The current values of the range to `worker`: from a copy, since later updates change master_
  // while the send may still read its buffer.
  void send_reply(size_t worker, StepResult& result) {
    const auto start = Clock::now();
    version_pulled_[worker] = version_;
    if (colocated_ && int(worker) == rank_) {
      std::copy(master_.begin(), master_.end(),
                model_.parameters().values().begin() + std::ptrdiff_t(own_range().first));
      own_pull_pending_ = false;
    } else {
      // The previous reply to this worker was received before it pushed again, so its send is done.
      if (reply_sends_[worker]) pull_group_.wait(*reply_sends_[worker]);
      std::copy(master_.begin(), master_.end(), reply(worker));
      reply_sends_[worker] = pull_group_.isend(int(worker), reply(worker), range_size(),
                                               uint32_t(pushes_served_[worker] - 1) & kMessageMask);
    }
    result.comm_s += seconds_since(start);
  }

  void record_staleness(size_t worker) {
    const double updates = double(version_ - version_pulled_[worker]);
    staleness_.mean = (staleness_.mean * double(staleness_.pushes) + updates) / double(staleness_.pushes + 1);
    staleness_.max = std::max(staleness_.max, updates);
    ++staleness_.pushes;
  }

  // Past the deadline: the wait on the oldest message still awaited throws, naming its peer.
  [[noreturn]] void throw_timeout(Deadline deadline) {
    for (RequestPtr& receive : pull_receives_)
      if (receive && !receive->complete()) pull_group_.wait(*receive, deadline);
    for (RequestPtr& receive : push_receives_)
      if (receive && !receive->complete()) push_group_.wait(*receive, deadline);
    throw TimeoutError("rank " + std::to_string(rank_) + " timed out in a parameter-server step");
  }

  const TrainOptions options_;
  const int rank_, ranks_;
  const bool colocated_;
  const size_t servers_, workers_;
  const bool is_worker_, is_server_;
  Model model_;
  Activations activations_;
  size_t classes_;
  ProcessGroup push_group_, pull_group_;
  SgdMomentum optimizer_;  // a server's: over its range
  bool yield_when_idle_;
  size_t step_ = 0;

  // Worker: this step's pushes and pulls, one per server.
  std::vector<RequestPtr> push_sends_, pull_receives_;
  bool pulls_pending_ = false, own_push_pending_ = false, own_pull_pending_ = false;

  // Server: the range's values, each worker's latest push and the copy its reply sends.
  FloatBuffer master_, pushed_, replies_;
  std::vector<const float*> other_pushes_;  // workers 1.. of pushed_, summed onto worker 0's by sync
  std::vector<RequestPtr> push_receives_, reply_sends_;
  std::vector<bool> arrived_;
  std::vector<uint64_t> pushes_served_, version_pulled_;
  std::vector<size_t> awaiting_reply_;
  uint64_t version_ = 0, served_total_ = 0;
  Staleness staleness_;

  double push_bytes_per_step_ = 0, pull_bytes_per_step_ = 0;
  PhaseCounts predicted_;
};

}  // namespace

std::unique_ptr<ParallelMode> make_parameter_server(Comm& comm, const TrainOptions& options, const ModelPlan& plan,
                                                    Backend& backend) {
  if (options.ps_servers >= size_t(comm.size()))
    throw UsageError("--servers " + std::to_string(options.ps_servers) + " leaves no worker among the " +
                     std::to_string(comm.size()) + " ranks");
  if (options.straggler_rank >= 0 &&
      (options.straggler_rank >= comm.size() ||
       (options.ps_servers > 0 && size_t(options.straggler_rank) >= size_t(comm.size()) - options.ps_servers)))
    throw UsageError("--straggler " + std::to_string(options.straggler_rank) + " is not a worker rank");
  return std::make_unique<ParameterServer>(comm, options, plan, backend);
}

}  // namespace cclab::train
