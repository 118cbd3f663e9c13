#include "report.h"

#include <cmath>
#include <cstdio>

#include "results.h"
#include "text_format.h"

namespace cclab::train {
namespace {

nlohmann::json step_time_json(const StepTime& time) {
  return {{"compute", time.compute_s}, {"comm", time.comm_s}, {"idle", time.idle_s}, {"total", time.total_s}};
}

nlohmann::json phase_json(double time_s, const Traffic& traffic) {
  return {{"time_s", time_s},
          {"sent_bytes_per_rank", traffic.sent_bytes_per_rank},
          {"predicted_sent_bytes_per_rank", traffic.predicted_sent_bytes_per_rank},
          {"textbook_sent_bytes_per_rank", traffic.textbook_sent_bytes_per_rank},
          {"sent_messages_per_rank", traffic.sent_messages_per_rank}};
}

nlohmann::json optional_number(const std::optional<Evaluation>& test, double Evaluation::*member) {
  return test ? nlohmann::json(test.value().*member) : nlohmann::json(nullptr);
}

nlohmann::json common_fields(const TrainOptions& options, const TrainSummary& run) {
  return {{"model", run.plan.name},
          {"spec", run.plan.spec},
          {"mode", options.mode},
          {"ranks", options.grid.ranks()},
          {"grid", {{"dp", options.grid.dp}, {"tp", options.grid.tp}, {"pp", options.grid.pp}}},
          {"global_batch", options.batch}};
}

std::string optional_text(const std::optional<Evaluation>& test, double Evaluation::*member) {
  return test ? format_text("%.4f", test.value().*member) : "-";
}

}  // namespace

nlohmann::json epoch_record(const TrainOptions& options, const TrainSummary& run, const EpochSummary& epoch,
                            const std::vector<std::string>& argv) {
  nlohmann::json record = base_record("epoch", argv);
  record.update(common_fields(options, run));
  record["epoch"] = epoch.epoch;
  record["steps"] = epoch.steps;
  record["samples"] = epoch.samples;
  record["train_loss"] = epoch.train_loss;
  record["train_accuracy"] = epoch.train_accuracy;
  record["test_loss"] = optional_number(epoch.test, &Evaluation::loss);
  record["test_accuracy"] = optional_number(epoch.test, &Evaluation::accuracy);
  record["time_s"] = epoch.time_s;
  record["timed_steps"] = epoch.timed_steps;
  record["images_per_s"] = epoch.images_per_s;
  record["step_time_s"] = step_time_json(epoch.step_time);
  return record;
}

nlohmann::json train_record(const TrainOptions& options, const TrainSummary& run,
                            const std::vector<std::string>& argv) {
  nlohmann::json record = base_record("train", argv);
  record.update(common_fields(options, run));
  record["steps"] = run.steps;
  record["epochs"] = run.epochs;
  record["final_loss"] = run.final_loss;
  record["last_step_loss"] = run.last_step_loss;
  record["test_accuracy"] = optional_number(run.test, &Evaluation::accuracy);
  record["test_loss"] = optional_number(run.test, &Evaluation::loss);
  record["images_per_s"] = run.images_per_s;
  record["speedup"] = run.speedup ? nlohmann::json(*run.speedup) : nlohmann::json(nullptr);
  record["step_time_s"] = step_time_json(run.step_time);
  // Per step, the phases together, on the busiest rank.
  const Traffic& f = run.traffic.forward;
  const Traffic& b = run.traffic.backward;
  const Traffic& g = run.traffic.grad_sync;
  record["sent_bytes_per_rank"] = run.sent_bytes_per_rank;
  record["predicted_sent_bytes_per_rank"] = run.predicted_sent_bytes_per_rank;
  record["phases"] = {{"data", phase_json(run.phases.data_s, {})},
                      {"forward", phase_json(run.phases.forward_s, f)},
                      {"backward", phase_json(run.phases.backward_s, b)},
                      // Communication time is one figure (step_time_s.comm); only in data mode is all of it
                      // gradient sync.
                      {"grad_sync", phase_json(options.mode == "data" ? run.phases.comm_s : NAN, g)},
                      {"update", phase_json(run.phases.update_s, {})}};
  if (options.mode == "ps" || options.mode == "fedavg") {  // the servers' phases (none elsewhere)
    record["phases"]["push"] = phase_json(NAN, run.traffic.push);
    record["phases"]["pull"] = phase_json(NAN, run.traffic.pull);
  }
  record["received_bytes_per_rank"] = run.received_bytes_per_rank;
  record["received_messages_per_rank"] = run.received_messages_per_rank;
  record["buckets"] = run.buckets;
  record["grad_sync_path"] = run.grad_sync_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(run.grad_sync_path);
  record["bucket_bytes"] = options.bucket_bytes;
  record["step_losses"] = run.step_losses;
  record["samples_us"] = run.step_samples_us;
  if (run.staleness)
    record["staleness"] = {{"mean", run.staleness->mean}, {"max", run.staleness->max}, {"unit", "updates"},
                           {"pushes", run.staleness->pushes}};
  record.update(run.mode_record.fields);
  record["parameter_sum"] = run.parameter_sum;
  record["parameter_abs_sum"] = run.parameter_abs_sum;
  record["parameters"] = run.parameters;
  record["data"] = options.data;
  record["train_data"] = run.train_description;
  record["test_data"] = run.test_description;
  record["learning_rate"] = options.learning_rate;
  record["momentum"] = options.momentum;
  record["seed"] = options.seed;
  record["threads"] = run.threads;
  record["train_time_s"] = run.train_time_s;
  record["timed_steps"] = run.timed_steps;
  record["first_step_s"] = run.first_step_s;
  record["memory_bytes_per_rank"] = run.memory_bytes_per_rank;
  record["eval_time_s"] = run.eval_time_s;
  record["backend"] = run.backend_record;
  return record;
}

void print_run_header(std::ostream& out, const TrainOptions& options, const TrainSummary& run, bool normalised) {
  const int ranks = options.grid.ranks();
  out << "# cclab train: " << run.plan.name << " (" << run.parameters << " parameters) on " << run.backend_description
      << ", mode " << options.mode << ", " << ranks
      << (ranks == 1 ? " rank, " : " ranks, ") << run.threads << (run.threads == 1 ? " thread" : " threads")
      << (ranks == 1 ? "" : " per rank") << " (" << run.threads_source << ")\n";
  out << "# layers: " << run.plan.spec << "\n";
  out << run.split;
  out << "# data: " << run.train_description << ", " << run.test_description;
  if (normalised) out << format_text(", normalised (x/255 - %.4f) / %.4f", kFashionMnistMean, kFashionMnistStd);
  out << format_text("; batch %zu, lr %g, momentum %g, seed %llu\n", options.batch, options.learning_rate,
                     options.momentum, static_cast<unsigned long long>(options.seed));
  out << format_text("# %5s %7s %11s %10s %10s %9s %9s %11s %9s\n", "epoch", "steps", "train_loss", "train_acc",
                     "test_loss", "test_acc", "time_s", "images/s", "step_ms");
  out.flush();
}

void print_epoch_line(std::ostream& out, const EpochSummary& epoch) {
  out << format_text("  %5zu %7zu %11.4f %10.4f %10s %9s %9.2f %11.0f %9.3f\n", epoch.epoch, epoch.steps,
                     epoch.train_loss, epoch.train_accuracy, optional_text(epoch.test, &Evaluation::loss).c_str(),
                     optional_text(epoch.test, &Evaluation::accuracy).c_str(), epoch.time_s, epoch.images_per_s,
                     epoch.step_time.total_s * 1e3);
  out.flush();
}

void print_summary(std::ostream& out, const TrainOptions& options, const TrainSummary& run) {
  out << format_text(
      "# per step: data %.3f ms, forward %.3f ms, backward %.3f ms, update %.3f ms (compute); "
      "communication %.3f ms; evaluation took %.2f s (not in images/s)\n",
      run.phases.data_s * 1e3, run.phases.forward_s * 1e3, run.phases.backward_s * 1e3, run.phases.update_s * 1e3,
      run.phases.comm_s * 1e3, run.eval_time_s);
  if (run.first_step_s > 0)
    out << format_text(
        "# the first step took %.1f ms (building oneDNN primitives%s): a warm-up, not in images/s and step times, "
        "which cover the other %zu steps\n",
        run.first_step_s * 1e3, options.grid.ranks() > 1 ? ", connecting peers" : "", run.timed_steps);
  out << format_text("# memory per rank (max over ranks): %.2f MB of parameters, gradients, momentum, activations and "
                     "buffers\n",
                     run.memory_bytes_per_rank / 1e6);
  if (options.grid.ranks() > 1) {
    const auto pair = [](const Traffic& t) {
      return format_text("%.0f B / %.0f msg (predicted %.0f B)", t.sent_bytes_per_rank, t.sent_messages_per_rank,
                         t.predicted_sent_bytes_per_rank);
    };
    const bool servers = options.mode == "ps" || options.mode == "fedavg";  // push and pull, no collectives
    out << "# sent per step and rank (max over ranks): "
        << (servers ? "push " + pair(run.traffic.push) + ", pull " + pair(run.traffic.pull)
                    : "forward " + pair(run.traffic.forward) + ", backward " + pair(run.traffic.backward) +
                          ", grad_sync " + pair(run.traffic.grad_sync))
        << format_text("; received %.0f B / %.0f msg", run.received_bytes_per_rank, run.received_messages_per_rank);
    if (run.buckets > 0)
      out << format_text("; %zu gradient buckets of >= %.3g MiB through %s", run.buckets,
                         double(options.bucket_bytes) / 1048576.0,
                         run.grad_sync_path == "node_shared_memory" ? "node-shared memory" : "the transport");
    out << "\n";
  }
  if (run.staleness)
    out << format_text("# staleness of the applied gradients: mean %.2f, max %.0f updates of a server's range since "
                       "the worker pulled it (%zu pushes)\n",
                       run.staleness->mean, run.staleness->max, run.staleness->pushes);
  out << run.mode_record.summary;
  out << format_text("%-10s %5s %6s %7s %7s %11s %9s %10s %9s %11s %8s %8s\n", "model", "mode", "ranks", "epochs",
                     "steps", "final_loss", "test_acc", "images/s", "step_ms", "compute_ms", "comm_ms", "idle_ms");
  out << format_text("%-10s %5s %6d %7.2f %7zu %11.4f %9s %10.0f %9.3f %11.3f %8.3f %8.3f\n", run.plan.name.c_str(),
                     options.mode.c_str(), options.grid.ranks(), run.epochs, run.steps, run.final_loss,
                     optional_text(run.test, &Evaluation::accuracy).c_str(), run.images_per_s,
                     run.step_time.total_s * 1e3, run.step_time.compute_s * 1e3, run.step_time.comm_s * 1e3,
                     run.step_time.idle_s * 1e3);
  out.flush();
}

void print_layer_profile(std::ostream& out, const Model& model, const LayerProfile& profile, size_t steps) {
  double total = 0;
  for (size_t i = 0; i < model.size(); ++i) total += profile.forward_s[i] + profile.backward_s[i];
  out << "# time per layer and step (training steps only), ms\n";
  out << format_text("# %5s  %-22s %12s %10s %10s %10s %7s\n", "layer", "name", "output", "params", "forward",
                     "backward", "share");
  for (size_t i = 0; i < model.size(); ++i) {
    const Layer& layer = model.layer(i);
    const double forward = profile.forward_s[i] / double(steps) * 1e3;
    const double backward = profile.backward_s[i] / double(steps) * 1e3;
    out << format_text("  %5zu  %-22s %12s %10zu %10.3f %10.3f %6.1f%%\n", i, layer.config().name().c_str(),
                       layer.output_shape().to_string().c_str(), layer.parameter_count(), forward, backward,
                       100.0 * (profile.forward_s[i] + profile.backward_s[i]) / total);
  }
}

}  // namespace cclab::train
