// Federated averaging (--mode fedavg; DESIGN 3.6): McMahan et al.'s FedAvg with the server momentum
// of FedAvgM (Hsu et al.), over workers and servers placed as in --mode ps.
//
// Placement. Workers hold the whole model; its parameters are split into contiguous ranges, one per
// server, and a server owns its range of the global model and of the momentum. Servers are dedicated
// ranks (--servers S: the last S) or every rank (--servers colocated, the default: each worker also
// serves a range, which never leaves its process).
//
// Rounds. A step is one global batch of the loader, as in every mode; a round is --local-steps K
// steps (the last round of an epoch may be shorter: every epoch ends with the global model on every
// worker, for evaluation). Round r's participants are max(1, round(F x workers)) workers drawn by
// the seed; each of them starts from the global model and trains one local step per global batch
// on its part of it, plain SGD on its own mean loss:
//   iid          the participants cut every global batch into contiguous shards (as data mode does
//                over all ranks), so a round trains on every sample of its batches;
//   label-skew   worker w takes the samples whose class c has c mod workers = w (a few classes each),
//                so the classes of the workers outside a round go untrained in it.
// At the end of the round each participant sends every server its range of its weights (push),
// unless the seed drops it out (probability --drop P: it trained, then sends nothing). A server
// waits for the uploads until --round-deadline seconds after the first of them arrived (with none,
// after as long as the first took in earlier rounds, plus the deadline; the whole --timeout in the
// first round, which has nothing to go by); what has not arrived by then is left out: a real
// deadline, not knowledge of the seed. It averages what arrived, weighted by the samples each
// trained on: avg. The difference to the global model is the round's pseudo-gradient,
// (w - avg) / lr, to which the server applies SGD with momentum (--lr, --momentum): w -= lr v.
// With one local step, every worker and no drops, the workers' parts partition the batch (iid or
// label-skewed alike) and avg = w - lr g with g the gradient of the global batch's mean loss, so the
// round is exactly a step of one-process training (up to float rounding).
// The server then sends its range to the next round's participants (pull); at the end of an epoch,
// to every worker.
//
// Every rank loads every global batch whole (cheap for these models): each knows every worker's
// sample count, which weights the average and the step's loss, without sending it.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <optional>

#include "cclab/comm.h"
#include "cclab/error.h"
#include "model/optimizer.h"
#include "model/random.h"
#include "modes/mode.h"
#include "modes/process_group.h"
#include "text_format.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kPushGroupId = 33, kPullGroupId = 34;
constexpr uint32_t kMessageMask = 0xFFFFFF;  // ProcessGroup's point-to-point ids are 24 bits
constexpr uint64_t kParticipantStream = 0x4645'4450'0000'0000ull, kDropStream = 0x4645'4444'0000'0000ull;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// [begin, end) of server s's range of `count` parameters: contiguous, sizes differ by at most one.
std::pair<size_t, size_t> server_range(size_t count, size_t server, size_t servers) {
  return {server * count / servers, (server + 1) * count / servers};
}

// One round as this rank saw it; summed (or, for missed uploads, maxed) over ranks for the record.
struct RoundFigures {
  double steps = 0, samples = 0, loss_sum = 0, correct = 0;
  double push_sent = 0, pull_sent = 0, push_predicted = 0, pull_predicted = 0;
  double missed = 0;  // uploads a server waited for in vain (each server of the round sees the same ones)
  static constexpr size_t kFigures = 9;
  std::vector<std::size_t> participants, dropped;  // the seed's draw, the same on every rank
};

class FederatedAveraging : public ParallelMode {
 public:
  FederatedAveraging(Comm& comm, const TrainOptions& options, const ModelPlan& plan, Backend& backend)
      : options_(options),
        comm_(comm),
        rank_(comm.rank()),
        colocated_(options.ps_servers == 0),
        servers_(colocated_ ? size_t(comm.size()) : options.ps_servers),
        workers_(colocated_ ? size_t(comm.size()) : size_t(comm.size()) - options.ps_servers),
        is_worker_(colocated_ || size_t(rank_) < workers_),
        is_server_(colocated_ || size_t(rank_) >= workers_),
        model_(plan.layers, backend, options.seed),
        activations_(model_, is_worker_ ? options.batch : 0),
        classes_(plan.output().elements()),
        sample_elements_(model_.input_shape().elements()),
        push_group_(comm, every_rank(comm), kPushGroupId),
        pull_group_(comm, every_rank(comm), kPullGroupId),
        local_sgd_(is_worker_ ? model_.parameters().size() : 0, float(options.learning_rate), 0.0f),
        server_sgd_(is_server_ ? own_range().second - own_range().first : 0, float(options.learning_rate),
                    float(options.momentum)),
        per_round_(std::max<size_t>(1, size_t(std::lround(options.participation * double(workers_))))),
        yield_when_idle_(comm.transport().yield_when_idle()) {
    per_round_ = std::min(per_round_, workers_);
    if (is_worker_) {
      download_.assign(model_.parameters().size(), 0.0f);
      upload_sends_.resize(servers_);
      download_receives_.resize(servers_);
      if (options.shards == "label-skew") {
        skew_images_.resize(options.batch * sample_elements_);
        skew_labels_.resize(options.batch);
      }
    }
    if (is_server_) {
      const auto [begin, end] = own_range();
      master_.assign(model_.parameters().values().begin() + std::ptrdiff_t(begin),
                     model_.parameters().values().begin() + std::ptrdiff_t(end));
      uploads_.assign(workers_ * master_.size(), 0.0f);
      upload_receives_.resize(workers_);
      pseudo_gradient_.assign(master_.size(), 0.0f);
    }
    samples_.assign(workers_, 0);
    has_global_model_.assign(workers_, true);  // every worker starts from the seed's initial weights
  }

  Shard shard() const override { return {0, 1}; }  // every rank loads each global batch whole

  std::string describe() const override {
    const size_t count = model_.parameters().size();
    std::string text = "# federated averaging: " + std::to_string(workers_) + " workers, " + std::to_string(servers_);
    text += colocated_ ? " colocated servers (each rank serves a range)"
                       : " dedicated servers (ranks " + std::to_string(workers_) + ".." +
                             std::to_string(workers_ + servers_ - 1) + ")";
    text += " of about " + std::to_string(count / servers_) + " of the " + std::to_string(count) + " parameters; ";
    text += format_text(
        "rounds of %zu local step(s) on %zu workers (participation %g), drop %g, %s shards, deadline "
        "%g s after a round's first upload; server momentum %g\n",
        options_.local_steps, per_round_, options_.participation, options_.drop, options_.shards.c_str(),
        options_.round_deadline_s, options_.momentum);
    return text;
  }

  StepResult train_step(const StepBatch& batch) override {
    StepResult result;
    if (steps_in_round_ == 0) begin_round();
    count_samples(batch);
    size_t trained = 0;
    for (size_t w : participants_) trained += step_samples_[w];
    if (trained > 0 && trained != batch.global_size) result.loss_samples = trained;
    if (is_worker_ && participates_[size_t(rank_)] && step_samples_[size_t(rank_)] > 0)
      train_locally(my_samples(batch), result);
    round_.steps += 1;
    round_.samples += double(rank_ == 0 ? trained : 0);
    round_.loss_sum += result.loss_sum;
    round_.correct += double(result.correct);
    if (++steps_in_round_ == options_.local_steps) close_round(participants_of(round_index_ + 1), result);
    return result;
  }

  void finish_steps() override {
    StepResult ignored;
    if (steps_in_round_ > 0) {
      close_round(every_worker(), ignored);
    } else {
      // The round closed with the epoch's last step and went to the next round's participants only:
      // the others get it now, in that round's traffic.
      const TrafficSnapshot before = snapshot();
      distribute(every_worker(), ignored);
      add_traffic_since(before, rounds_.back());
    }
  }

  StepResult evaluate(const StepBatch& batch) override {
    // Every rank holds the whole batch: worker w evaluates its shard of it; dedicated servers none.
    if (!is_worker_) return {};
    const auto [begin, end] = BatchLoader::shard_range(batch.local_size, {size_t(rank_), workers_});
    const StepBatch part{batch.input + begin * sample_elements_, batch.labels + begin, end - begin, end - begin};
    return evaluate_whole_model(model_, activations_, part, classes_);
  }

  ModeTraffic traffic() const override { return traffic_of({}, {}, {}, {&push_group_}, {&pull_group_}); }
  PhaseCounts predicted_sent_bytes() const override { return predicted_; }
  PhaseCounts textbook_sent_bytes() const override { return predicted_; }

  std::span<float> parameters() override { return master_; }
  std::span<float> velocity() override { return server_sgd_.velocity(); }
  bool replicated() const override { return false; }

  std::pair<double, double> parameter_sums() const override {
    double sum = 0, abs_sum = 0;
    for (float value : master_) {  // each server's range: every parameter of the global model once
      sum += value;
      abs_sum += std::fabs(value);
    }
    return {sum, abs_sum};
  }

  Model& local_model() override { return model_; }

  ModeRecord mode_record() override;

 private:
  int server_rank(size_t server) const { return colocated_ ? int(server) : int(workers_ + server); }
  size_t server_index() const { return colocated_ ? size_t(rank_) : size_t(rank_) - workers_; }
  std::pair<size_t, size_t> own_range() const {
    return server_range(model_.parameters().size(), server_index(), servers_);
  }
  std::pair<size_t, size_t> range_of(size_t server) const {
    return server_range(model_.parameters().size(), server, servers_);
  }
  float* upload(size_t worker) { return uploads_.data() + worker * master_.size(); }
  std::vector<size_t> every_worker() const {
    std::vector<size_t> all(workers_);
    std::iota(all.begin(), all.end(), size_t{0});
    return all;
  }

  // The seed's draw of round r's participants (sorted): a partial Fisher-Yates shuffle.
  std::vector<size_t> participants_of(size_t round) const {
    std::vector<size_t> order = every_worker();
    CounterRng rng(options_.seed, kParticipantStream + round);
    for (size_t i = 0; i < per_round_; ++i) std::swap(order[i], order[i + uniform_below(rng.next(), workers_ - i)]);
    order.resize(per_round_);
    std::sort(order.begin(), order.end());
    return order;
  }

  void begin_round() {
    participants_ = participants_of(round_index_);
    participates_.assign(workers_, false);
    dropped_.assign(workers_, false);
    round_ = RoundFigures{};
    round_.participants = participants_;
    for (size_t w : participants_) {
      participates_[w] = true;
      dropped_[w] = options_.drop > 0 &&
                    double(uniform01(random_bits(options_.seed, kDropStream + round_index_, w))) < options_.drop;
      if (dropped_[w]) round_.dropped.push_back(w);
    }
    std::fill(samples_.begin(), samples_.end(), size_t{0});
  }

  // Each participant's samples of this global batch (step_samples_), added to the round's.
  void count_samples(const StepBatch& batch) {
    step_samples_.assign(workers_, 0);
    if (options_.shards == "label-skew") {
      for (size_t i = 0; i < batch.local_size; ++i) {
        const size_t owner = size_t(batch.labels[i]) % workers_;
        if (participates_[owner]) ++step_samples_[owner];
      }
    } else {
      for (size_t p = 0; p < participants_.size(); ++p) {
        const auto [begin, end] = BatchLoader::shard_range(batch.local_size, {p, participants_.size()});
        step_samples_[participants_[p]] = end - begin;
      }
    }
    for (size_t w = 0; w < workers_; ++w) samples_[w] += step_samples_[w];
  }

  // This worker's samples of the batch: a slice (iid) or the samples of its classes, gathered.
  StepBatch my_samples(const StepBatch& batch) {
    const size_t n = step_samples_[size_t(rank_)];
    if (options_.shards == "label-skew") {
      size_t taken = 0;
      for (size_t i = 0; i < batch.local_size; ++i) {
        if (size_t(batch.labels[i]) % workers_ != size_t(rank_)) continue;
        std::copy_n(batch.input + i * sample_elements_, sample_elements_,
                    skew_images_.data() + taken * sample_elements_);
        skew_labels_[taken++] = batch.labels[i];
      }
      return {skew_images_.data(), skew_labels_.data(), n, n};
    }
    const size_t position =
        size_t(std::find(participants_.begin(), participants_.end(), size_t(rank_)) - participants_.begin());
    const auto [begin, end] = BatchLoader::shard_range(batch.local_size, {position, participants_.size()});
    return {batch.input + begin * sample_elements_, batch.labels + begin, n, n};
  }

  // One local SGD step on the worker's own mean loss (normaliser: its own samples).
  void train_locally(const StepBatch& mine, StepResult& result) {
    const auto start = Clock::now();
    forward_with_loss(model_, activations_, mine, classes_, result);
    const auto forwarded = Clock::now();
    model_.backward(activations_, mine.local_size, BackwardOptions{});
    const auto backwarded = Clock::now();
    local_sgd_.step(model_.parameters());
    result.forward_s = std::chrono::duration<double>(forwarded - start).count();
    result.backward_s = std::chrono::duration<double>(backwarded - forwarded).count();
    result.update_s = seconds_since(backwarded);
  }

  // The end of a round: uploads, the servers' averages, and the new global model to `targets`.
  void close_round(const std::vector<size_t>& targets, StepResult& result) {
    const TrafficSnapshot before = snapshot();
    const uint32_t message = uint32_t(round_index_) & kMessageMask;
    const bool uploads = is_worker_ && uploading(size_t(rank_));
    if (uploads) {
      const auto post_start = Clock::now();
      const float* values = model_.parameters().values().data();
      for (size_t s = 0; s < servers_; ++s) {
        const auto [begin, end] = range_of(s);
        if (server_rank(s) == rank_)  // our own range: an upload that never leaves the process
          std::copy(values + begin, values + end, upload(size_t(rank_)));
        else
          upload_sends_[s] = push_group_.isend(server_rank(s), values + begin, end - begin, message);
      }
      result.comm_s += seconds_since(post_start);
    }
    if (uploads)  // DESIGN 3.7: a worker sends P w, less its own range when it serves one
      for (size_t s = 0; s < servers_; ++s)
        if (server_rank(s) != rank_) predicted_.push += range_bytes(s);
    if (is_server_) average_uploads(result);
    std::fill(has_global_model_.begin(), has_global_model_.end(), false);
    distribute(targets, result);
    finish_requests(upload_sends_, push_group_);
    add_traffic_since(before, round_);
    rounds_.push_back(round_);
    ++round_index_;
    steps_in_round_ = 0;
  }

  // Bytes sent and predicted so far, to take a round's share.
  struct TrafficSnapshot {
    double push_sent, pull_sent, push_predicted, pull_predicted;
  };
  TrafficSnapshot snapshot() const {
    return {push_group_.traffic().bytes_sent, pull_group_.traffic().bytes_sent, predicted_.push, predicted_.pull};
  }
  void add_traffic_since(const TrafficSnapshot& before, RoundFigures& round) const {
    const TrafficSnapshot now = snapshot();
    round.push_sent += now.push_sent - before.push_sent;
    round.pull_sent += now.pull_sent - before.pull_sent;
    round.push_predicted += now.push_predicted - before.push_predicted;
    round.pull_predicted += now.pull_predicted - before.pull_predicted;
  }

  // Whether worker w sends its weights at the end of this round (it took part, trained, did not drop).
  bool uploading(size_t w) const { return participates_[w] && !dropped_[w] && samples_[w] > 0; }
  double range_bytes(size_t server) const {
    const auto [begin, end] = range_of(server);
    return double((end - begin) * sizeof(float));
  }

  // A server's part of closing a round: takes the uploads until the deadline, then one SGD step
  // with momentum on the pseudo-gradient (w - weighted average) / lr.
  void average_uploads(StepResult& result) {
    const uint32_t message = uint32_t(round_index_) & kMessageMask;
    std::vector<size_t> expected, arrived;
    for (size_t w : participants_) {
      if (samples_[w] == 0) continue;  // nothing trained: nothing to average (and nothing is sent)
      expected.push_back(w);
      if (colocated_ && w == size_t(rank_)) {
        if (uploading(w)) arrived.push_back(w);
        continue;
      }
      // An upload still awaited from an earlier round is given up on (a receive is cancelled).
      upload_receives_[w] = push_group_.irecv(int(w), upload(w), master_.size(), message);
    }
    const auto wait_start = Clock::now();
    std::optional<Clock::time_point> first_arrival;
    if (!arrived.empty()) first_arrival = wait_start;
    const Deadline job_deadline = push_group_.deadline();
    // With nothing to go by, half the --timeout: the workers' wait for the model must not run out first.
    const Clock::time_point no_history_deadline = wait_start + (job_deadline.when - wait_start) / 2;
    Backoff backoff(yield_when_idle_);
    while (arrived.size() < expected.size()) {
      bool moved = push_group_.progress() | pull_group_.progress();
      for (size_t w : expected) {
        if (!upload_receives_[w] || !upload_receives_[w]->complete()) continue;
        upload_receives_[w].reset();
        arrived.push_back(w);
        if (!first_arrival) first_arrival = Clock::now();
        moved = true;
      }
      if (moved) {
        backoff.reset();
        continue;
      }
      if (Clock::now() >= upload_deadline(wait_start, first_arrival, no_history_deadline)) break;
      backoff.idle();
    }
    if (first_arrival)
      longest_first_arrival_s_ =
          std::max(longest_first_arrival_s_, std::chrono::duration<double>(*first_arrival - wait_start).count());
    round_.missed = double(expected.size() - arrived.size());
    if (arrived.empty()) return;  // the global model stays as it was
    const auto start = Clock::now();
    double total = 0;
    for (size_t w : arrived) total += double(samples_[w]);
    const double inverse_lr = 1.0 / options_.learning_rate;
    std::sort(arrived.begin(), arrived.end());  // the same order whatever order they came in
    for (size_t i = 0; i < master_.size(); ++i) {
      double average = 0;
      for (size_t w : arrived) average += double(samples_[w]) / total * double(upload(w)[i]);
      pseudo_gradient_[i] = float((double(master_[i]) - average) * inverse_lr);
    }
    server_sgd_.step_range(master_, pseudo_gradient_, 0);
    result.update_s += seconds_since(start);
  }

  // After the first upload: --round-deadline more. Before any: twice as long as the first took in the
  // rounds before, plus --round-deadline; `no_history` until a round has had an upload.
  Clock::time_point upload_deadline(Clock::time_point wait_start, const std::optional<Clock::time_point>& first_arrival,
                                    Clock::time_point no_history) const {
    const auto after = [](Clock::time_point from, double seconds) {
      return from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    };
    if (first_arrival) return after(*first_arrival, options_.round_deadline_s);
    if (longest_first_arrival_s_ < 0) return no_history;
    return after(wait_start, 2 * longest_first_arrival_s_ + options_.round_deadline_s);
  }

  // The servers send their ranges of the global model to `targets` that lack it; those receive them.
  void distribute(const std::vector<size_t>& targets, StepResult& result) {
    const uint32_t message = uint32_t(round_index_) & kMessageMask;
    const bool receiving = is_worker_ && std::find(targets.begin(), targets.end(), size_t(rank_)) != targets.end() &&
                           !has_global_model_[size_t(rank_)];
    const auto post_start = Clock::now();
    if (receiving)
      for (size_t s = 0; s < servers_; ++s) {
        if (server_rank(s) == rank_) continue;
        const auto [begin, end] = range_of(s);
        download_receives_[s] = pull_group_.irecv(server_rank(s), download_.data() + begin, end - begin, message);
      }
    if (is_server_)
      for (size_t t : targets) {
        if (has_global_model_[t]) continue;
        if (colocated_ && t == size_t(rank_)) {
          std::copy(master_.begin(), master_.end(), download_.begin() + std::ptrdiff_t(own_range().first));
          continue;
        }
        download_sends_.push_back(pull_group_.isend(int(t), master_.data(), master_.size(), message));
        predicted_.pull += range_bytes(server_index());  // DESIGN 3.7: a server sends its range to each worker
      }
    result.comm_s += seconds_since(post_start);
    finish_requests(download_receives_, pull_group_);
    finish_requests(download_sends_, pull_group_);
    download_sends_.clear();
    if (receiving) std::copy(download_.begin(), download_.end(), model_.parameters().values().begin());
    for (size_t t : targets) has_global_model_[t] = true;
  }

  // Waits for every request in `requests` (null ones are done) within the job's --timeout.
  void finish_requests(std::vector<RequestPtr>& requests, ProcessGroup& group) {
    const Deadline deadline = group.deadline();
    for (RequestPtr& request : requests)
      if (request) {
        group.wait(*request, deadline);
        request.reset();
      }
  }

  const TrainOptions options_;
  Comm& comm_;
  const int rank_;
  const bool colocated_;
  const size_t servers_, workers_;
  const bool is_worker_, is_server_;
  Model model_;
  Activations activations_;
  const size_t classes_, sample_elements_;
  ProcessGroup push_group_, pull_group_;
  SgdMomentum local_sgd_;   // a worker's: plain SGD over the whole model
  SgdMomentum server_sgd_;  // a server's: SGD with momentum over its range of the global model
  size_t per_round_;
  const bool yield_when_idle_;

  // The round: its index, steps so far, the seed's draw, each worker's samples so far.
  size_t round_index_ = 0, steps_in_round_ = 0;
  std::vector<size_t> participants_;
  std::vector<bool> participates_, dropped_, has_global_model_;
  std::vector<size_t> samples_, step_samples_;
  RoundFigures round_;
  std::vector<RoundFigures> rounds_;
  double longest_first_arrival_s_ = -1;  // < 0: no round has had an upload yet

  // Worker: the global model as it arrives, the label-skewed batch, the requests of a round.
  FloatBuffer download_, skew_images_;
  std::vector<int32_t> skew_labels_;
  std::vector<RequestPtr> upload_sends_, download_receives_;

  // Server: its range of the global model, every worker's latest upload of it, the pseudo-gradient.
  FloatBuffer master_, uploads_, pseudo_gradient_;
  std::vector<RequestPtr> upload_receives_, download_sends_;

  PhaseCounts predicted_;
};

// Sums every rank's figures of every round (the most for missed uploads) and writes the rounds.
ModeRecord FederatedAveraging::mode_record() {
  std::string mine;
  char number[40];
  for (const RoundFigures& round : rounds_)
    for (double value : {round.steps, round.samples, round.loss_sum, round.correct, round.push_sent, round.pull_sent,
                         round.push_predicted, round.pull_predicted, round.missed}) {
      std::snprintf(number, sizeof number, "%a ", value);
      mine += number;
    }
  std::vector<std::array<double, RoundFigures::kFigures>> totals(rounds_.size());
  for (const std::string& theirs : comm_.allgather(mine)) {
    const char* cursor = theirs.c_str();
    for (auto& round : totals)
      for (size_t i = 0; i < RoundFigures::kFigures; ++i) {
        char* end = nullptr;
        const double value = std::strtod(cursor, &end);
        cursor = end;
        // Steps are the same on every rank and missed uploads the same on every server of a round.
        round[i] = (i == 0 || i == 8) ? std::max(round[i], value) : round[i] + value;
      }
  }
  ModeRecord record;
  nlohmann::json rounds = nlohmann::json::array();
  double dropped = 0, missed = 0, push = 0, pull = 0;
  for (size_t r = 0; r < rounds_.size(); ++r) {
    const auto& t = totals[r];
    rounds.push_back({{"round", r + 1},
                      {"steps", t[0]},
                      {"participants", rounds_[r].participants},
                      {"dropped", rounds_[r].dropped},
                      {"missed_deadline", t[8]},
                      {"samples", t[1]},
                      {"train_loss", t[1] > 0 ? nlohmann::json(t[2] / t[1]) : nlohmann::json(nullptr)},
                      {"train_accuracy", t[1] > 0 ? nlohmann::json(t[3] / t[1]) : nlohmann::json(nullptr)},
                      {"sent_bytes", {{"push", t[4]}, {"pull", t[5]}}},
                      {"predicted_sent_bytes", {{"push", t[6]}, {"pull", t[7]}}}});
    dropped += double(rounds_[r].dropped.size());
    missed += t[8];
    push += t[4];
    pull += t[5];
  }
  record.fields = {{"local_steps", options_.local_steps},
                   {"participation", options_.participation},
                   {"drop", options_.drop},
                   {"shards", options_.shards},
                   {"round_deadline_s", options_.round_deadline_s},
                   {"servers", colocated_ ? nlohmann::json("colocated") : nlohmann::json(servers_)},
                   {"workers", workers_},
                   {"dropped_workers", dropped},
                   {"missed_deadline", missed},
                   {"rounds", rounds}};
  const double count = double(std::max<size_t>(rounds_.size(), 1));
  record.summary = format_text(
      "# federated averaging: %zu rounds; %.0f uploads dropped by the seed, %.0f missed the servers' deadline; sent "
      "per round (all ranks): push %.0f B, pull %.0f B\n",
      rounds_.size(), dropped, missed, push / count, pull / count);
  return record;
}

}  // namespace

std::unique_ptr<ParallelMode> make_federated_averaging(Comm& comm, const TrainOptions& options, const ModelPlan& plan,
                                                       Backend& backend) {
  if (options.ps_servers >= size_t(comm.size()))
    throw UsageError("--servers " + std::to_string(options.ps_servers) + " leaves no worker among the " +
                     std::to_string(comm.size()) + " ranks");
  return std::make_unique<FederatedAveraging>(comm, options, plan, backend);
}

}  // namespace cclab::train
