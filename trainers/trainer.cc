#include "trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "backends/onednn/onednn_backend.h"
#include "cclab/error.h"
#include "cclab/launch.h"
#include "data/loader.h"
#include "model/loss.h"
#include "model/optimizer.h"
#include "results.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

int positive_env(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return 0;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  return (*end == '\0' && parsed > 0 && parsed < 4096) ? int(parsed) : 0;
}

std::string format(const char* pattern, auto... values) {
  char line[512];
  std::snprintf(line, sizeof line, pattern, values...);
  return line;
}

void validate(const TrainOptions& options) {
  if (options.batch == 0) throw UsageError("--batch must be at least 1");
  if (options.epochs == 0 && options.steps == 0) throw UsageError("--epochs must be at least 1");
  if (!(options.learning_rate > 0) || !std::isfinite(options.learning_rate))
    throw UsageError("--lr must be a positive number");
  if (!(options.momentum >= 0 && options.momentum < 1)) throw UsageError("--momentum must be in [0, 1)");
  if (options.eval_batch == 0) throw UsageError("the evaluation batch must be at least 1");
}

nlohmann::json step_time_json(const StepTime& time) {
  return {{"compute", time.compute_s}, {"comm", time.comm_s}, {"idle", time.idle_s}, {"total", time.total_s}};
}

// Single process: nothing is sent, and the model predicts nothing either.
nlohmann::json phase_json(double time_s) {
  return {{"time_s", time_s}, {"sent_bytes_per_rank", 0}, {"predicted_sent_bytes_per_rank", 0}};
}

nlohmann::json optional_number(const std::optional<Evaluation>& test, double Evaluation::*member) {
  return test ? nlohmann::json(test.value().*member) : nlohmann::json(nullptr);
}

nlohmann::json common_fields(const TrainOptions& options, const TrainSummary& summary) {
  return {{"model", summary.plan.name},
          {"spec", summary.plan.spec},
          {"mode", options.mode},
          {"ranks", options.ranks},
          {"grid", {{"dp", options.ranks}, {"tp", 1}, {"pp", 1}}},
          {"global_batch", options.batch}};
}

nlohmann::json epoch_record(const TrainOptions& options, const TrainSummary& summary, const EpochSummary& epoch,
                            const std::vector<std::string>& argv) {
  nlohmann::json record = base_record("epoch", argv);
  record.update(common_fields(options, summary));
  record["epoch"] = epoch.epoch;
  record["steps"] = epoch.steps;
  record["samples"] = epoch.samples;
  record["train_loss"] = epoch.train_loss;
  record["train_accuracy"] = epoch.train_accuracy;
  record["test_loss"] = optional_number(epoch.test, &Evaluation::loss);
  record["test_accuracy"] = optional_number(epoch.test, &Evaluation::accuracy);
  record["time_s"] = epoch.time_s;
  record["images_per_s"] = epoch.images_per_s;
  record["step_time_s"] = step_time_json(epoch.step_time);
  return record;
}

nlohmann::json train_record(const TrainOptions& options, const TrainSummary& summary,
                            const std::vector<std::string>& argv) {
  nlohmann::json record = base_record("train", argv);
  record.update(common_fields(options, summary));
  record["steps"] = summary.steps;
  record["epochs"] = summary.epochs;
  record["final_loss"] = summary.final_loss;
  record["last_step_loss"] = summary.last_step_loss;
  record["test_accuracy"] = optional_number(summary.test, &Evaluation::accuracy);
  record["test_loss"] = optional_number(summary.test, &Evaluation::loss);
  record["images_per_s"] = summary.images_per_s;
  record["speedup"] = 1.0;  // over one rank: this is the one-rank run
  record["step_time_s"] = step_time_json(summary.step_time);
  record["sent_bytes_per_rank"] = 0;
  record["predicted_sent_bytes_per_rank"] = 0;
  record["phases"] = {{"data", phase_json(summary.phases.data_s)},
                      {"forward", phase_json(summary.phases.forward_s)},
                      {"backward", phase_json(summary.phases.backward_s)},
                      {"grad_sync", phase_json(summary.phases.grad_sync_s)},
                      {"update", phase_json(summary.phases.update_s)}};
  record["parameters"] = summary.parameters;
  record["data"] = options.data;
  record["train_data"] = summary.train_description;
  record["test_data"] = summary.test_description;
  record["learning_rate"] = options.learning_rate;
  record["momentum"] = options.momentum;
  record["seed"] = options.seed;
  record["threads"] = summary.threads;
  record["train_time_s"] = summary.train_time_s;
  record["eval_time_s"] = summary.eval_time_s;
  record["backend"] = {{"name", "onednn"},
                       {"version", onednn_version()},
                       {"cpu_runtime", onednn_cpu_runtime()},
                       {"isa", onednn_cpu_isa()}};
  return record;
}

void print_profile(std::ostream& out, const Model& model, const LayerProfile& profile, size_t steps) {
  double total = 0;
  for (size_t i = 0; i < model.size(); ++i) total += profile.forward_s[i] + profile.backward_s[i];
  out << "# time per layer (training steps only), ms per step\n";
  out << format("# %5s  %-22s %12s %10s %10s %10s %7s\n", "layer", "name", "output", "params", "forward", "backward",
                "share");
  for (size_t i = 0; i < model.size(); ++i) {
    const Layer& layer = model.layer(i);
    const double forward = profile.forward_s[i] / double(steps) * 1e3, backward = profile.backward_s[i] / double(steps) * 1e3;
    out << format("  %5zu  %-22s %12s %10zu %10.3f %10.3f %6.1f%%\n", i, layer.config().name().c_str(),
                  layer.output_shape().to_string().c_str(), layer.parameter_count(), forward, backward,
                  100.0 * (profile.forward_s[i] + profile.backward_s[i]) / total);
  }
}

}  // namespace

std::pair<int, std::string> resolve_compute_threads(int requested) {
  if (requested > 0) return {requested, "--threads"};
  if (int threads = positive_env("CCLAB_THREADS")) return {threads, "CCLAB_THREADS"};
  if (int threads = positive_env("OMP_NUM_THREADS")) return {threads, "OMP_NUM_THREADS"};
  return {std::max(1, this_rank_placement().threads), "cpus available"};
}

Evaluation evaluate(Model& model, const Dataset& dataset, size_t batch) {
  const size_t classes = model.output_shape().elements();
  Activations activations(model, std::min(batch, dataset.size()));
  BatchLoader loader(dataset, activations.max_batch(), 0, false);
  std::vector<int32_t> labels(activations.max_batch());
  double loss = 0;
  size_t correct = 0;
  for (size_t step = 0; step < loader.steps_per_epoch(); ++step) {
    const BatchInfo info = loader.load(0, step, activations.input(), labels.data());
    model.forward(activations, info.local_size, false);
    const LossResult result =
        softmax_cross_entropy(activations.output(), labels.data(), info.local_size, classes, nullptr, 1.0);
    loss += result.loss_sum;
    correct += result.correct;
  }
  return {loss / double(dataset.size()), double(correct) / double(dataset.size())};
}

TrainSummary train_single_process(const TrainOptions& options, const std::vector<std::string>& argv,
                                  std::ostream& out) {
  validate(options);
  const DataSource source = parse_data_source(options.data, options.data_directory);
  TrainSummary summary;
  summary.plan = plan_model(options.model, source.shape);
  const size_t classes = summary.plan.output().elements();
  if (source.kind == DataSource::Kind::fashion_mnist && classes != 10)
    throw UsageError("the model ends in " + std::to_string(classes) + " outputs but fashion-mnist has 10 classes");
  ResultWriter writer(options.json_path);  // fail on an unwritable file before spending time
  std::tie(summary.threads, summary.threads_source) = resolve_compute_threads(options.threads);
  set_compute_threads(summary.threads);

  const DataSplits data = open_data(source, classes, options.seed);
  summary.train_description = data.train->description();
  summary.test_description = data.test->description();
  OnednnBackend backend;
  Model model(summary.plan.layers, backend, options.seed);
  summary.parameters = model.parameters().size();
  LayerProfile profile;
  if (options.profile_layers) model.set_profile(&profile);
  SgdMomentum optimizer(model.parameters().size(), float(options.learning_rate), float(options.momentum));
  BatchLoader loader(*data.train, options.batch, options.seed, true);
  Activations activations(model, loader.max_local_batch());
  std::vector<int32_t> labels(loader.max_local_batch());

  const size_t steps_per_epoch = loader.steps_per_epoch();
  const size_t total_steps = options.steps > 0 ? options.steps : options.epochs * steps_per_epoch;
  const size_t epochs = (total_steps + steps_per_epoch - 1) / steps_per_epoch;

  out << "# cclab train: " << summary.plan.name << " (" << summary.parameters << " parameters) on oneDNN "
      << onednn_version() << " (" << onednn_cpu_runtime() << ", " << onednn_cpu_isa() << "), mode " << options.mode
      << ", " << options.ranks << " rank, " << summary.threads << " thread" << (summary.threads == 1 ? "" : "s")
      << " (" << summary.threads_source << ")\n";
  out << "# layers: " << summary.plan.spec << "\n";
  out << "# data: " << summary.train_description << ", " << summary.test_description;
  if (source.kind == DataSource::Kind::fashion_mnist)
    out << format(", normalised (x/255 - %.4f) / %.4f", kFashionMnistMean, kFashionMnistStd);
  out << format("; batch %zu, lr %g, momentum %g, seed %llu\n", options.batch, options.learning_rate,
                options.momentum, static_cast<unsigned long long>(options.seed));
  out << format("# %5s %7s %11s %10s %10s %9s %9s %11s %9s\n", "epoch", "steps", "train_loss", "train_acc",
                "test_loss", "test_acc", "time_s", "images/s", "step_ms");
  out.flush();

  PhaseTimes phase_sums;
  double step_sum_s = 0;
  size_t steps_done = 0;
  for (size_t epoch = 0; epoch < epochs; ++epoch) {
    EpochSummary epoch_summary;
    epoch_summary.epoch = epoch + 1;
    PhaseTimes epoch_phases;
    double epoch_loss = 0, epoch_step_s = 0;
    size_t epoch_correct = 0;
    const size_t steps_this_epoch = std::min(steps_per_epoch, total_steps - steps_done);
    for (size_t step = 0; step < steps_this_epoch; ++step) {
      const auto step_start = Clock::now();
      BatchInfo info = loader.load(epoch, step, activations.input(), labels.data());
      const auto forward_start = Clock::now();
      model.forward(activations, info.local_size, true);
      const LossResult loss = softmax_cross_entropy(activations.output(), labels.data(), info.local_size, classes,
                                                    activations.output_gradient(), double(info.global_size));
      const auto backward_start = Clock::now();
      model.backward(activations, info.local_size, {});
      const auto update_start = Clock::now();
      optimizer.step(model.parameters());
      const auto step_end = Clock::now();
      const auto seconds = [](auto from, auto to) { return std::chrono::duration<double>(to - from).count(); };
      epoch_phases.data_s += seconds(step_start, forward_start);
      epoch_phases.forward_s += seconds(forward_start, backward_start);
      epoch_phases.backward_s += seconds(backward_start, update_start);
      epoch_phases.update_s += seconds(update_start, step_end);
      epoch_step_s += seconds(step_start, step_end);
      const double mean_loss = loss.loss_sum / double(info.global_size);
      if (!std::isfinite(mean_loss))
        throw Error("the loss diverged to " + std::to_string(mean_loss) + " at epoch " + std::to_string(epoch + 1) +
                    " step " + std::to_string(step + 1) + " (try a smaller --lr)");
      epoch_loss += mean_loss;
      epoch_correct += loss.correct;
      epoch_summary.samples += info.global_size;
      summary.last_step_loss = mean_loss;
    }
    steps_done += steps_this_epoch;
    epoch_summary.steps = steps_this_epoch;
    epoch_summary.train_loss = epoch_loss / double(steps_this_epoch);
    epoch_summary.train_accuracy = double(epoch_correct) / double(epoch_summary.samples);
    epoch_summary.time_s = epoch_step_s;
    epoch_summary.images_per_s = double(epoch_summary.samples) / epoch_step_s;
    const double n = double(steps_this_epoch);
    epoch_summary.phases = {epoch_phases.data_s / n, epoch_phases.forward_s / n, epoch_phases.backward_s / n,
                            epoch_phases.update_s / n, 0};
    epoch_summary.step_time.total_s = epoch_step_s / n;
    epoch_summary.step_time.compute_s = epoch_phases.compute_s() / n;
    epoch_summary.step_time.idle_s =
        std::max(0.0, epoch_summary.step_time.total_s - epoch_summary.step_time.compute_s);
    if (options.evaluate) {
      const auto eval_start = Clock::now();
      epoch_summary.test = evaluate(model, *data.test, options.eval_batch);
      summary.eval_time_s += since(eval_start);
    }
    out << format("  %5zu %7zu %11.4f %10.4f %10s %9s %9.2f %11.0f %9.3f\n", epoch_summary.epoch, epoch_summary.steps,
                  epoch_summary.train_loss, epoch_summary.train_accuracy,
                  epoch_summary.test ? format("%.4f", epoch_summary.test->loss).c_str() : "-",
                  epoch_summary.test ? format("%.4f", epoch_summary.test->accuracy).c_str() : "-",
                  epoch_summary.time_s, epoch_summary.images_per_s, epoch_summary.step_time.total_s * 1e3);
    out.flush();
    phase_sums.data_s += epoch_phases.data_s;
    phase_sums.forward_s += epoch_phases.forward_s;
    phase_sums.backward_s += epoch_phases.backward_s;
    phase_sums.update_s += epoch_phases.update_s;
    step_sum_s += epoch_step_s;
    summary.epoch_summaries.push_back(epoch_summary);
    writer.write(epoch_record(options, summary, epoch_summary, argv));
  }

  const double n = double(steps_done);
  size_t samples = 0;
  for (const EpochSummary& epoch : summary.epoch_summaries) samples += epoch.samples;
  summary.steps = steps_done;
  summary.epochs = n / double(steps_per_epoch);
  summary.final_loss = summary.epoch_summaries.back().train_loss;
  summary.test = summary.epoch_summaries.back().test;
  summary.train_time_s = step_sum_s;
  summary.images_per_s = double(samples) / step_sum_s;
  summary.phases = {phase_sums.data_s / n, phase_sums.forward_s / n, phase_sums.backward_s / n,
                    phase_sums.update_s / n, 0};
  summary.step_time.total_s = step_sum_s / n;
  summary.step_time.compute_s = phase_sums.compute_s() / n;
  summary.step_time.idle_s = std::max(0.0, summary.step_time.total_s - summary.step_time.compute_s);
  writer.write(train_record(options, summary, argv));

  if (options.profile_layers) print_profile(out, model, profile, steps_done);
  out << "# per step: data " << format("%.3f", summary.phases.data_s * 1e3) << " ms, forward "
      << format("%.3f", summary.phases.forward_s * 1e3) << " ms, backward "
      << format("%.3f", summary.phases.backward_s * 1e3) << " ms, update "
      << format("%.3f", summary.phases.update_s * 1e3) << " ms; evaluation took "
      << format("%.2f", summary.eval_time_s) << " s (not in images/s)\n";
  out << format("%-10s %5s %6s %7s %7s %11s %9s %10s %9s %11s %8s %8s\n", "model", "mode", "ranks", "epochs", "steps",
                "final_loss", "test_acc", "images/s", "step_ms", "compute_ms", "comm_ms", "idle_ms");
  out << format("%-10s %5s %6d %7.2f %7zu %11.4f %9s %10.0f %9.3f %11.3f %8.3f %8.3f\n", summary.plan.name.c_str(),
                options.mode.c_str(), options.ranks, summary.epochs, summary.steps, summary.final_loss,
                summary.test ? format("%.4f", summary.test->accuracy).c_str() : "-", summary.images_per_s,
                summary.step_time.total_s * 1e3, summary.step_time.compute_s * 1e3, summary.step_time.comm_s * 1e3,
                summary.step_time.idle_s * 1e3);
  return summary;
}

}  // namespace cclab::train
