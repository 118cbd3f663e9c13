// What a training run prints and records (DESIGN 3.5): the "epoch" and "train" JSON records and the
// terminal lines rendered from the same summaries. Shared by every mode.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "model/model.h"
#include "trainer.h"

namespace cclab::train {

/// kind "epoch": model, mode, ranks, grid, global_batch, epoch, steps, train/test loss and
/// accuracy, time_s, images_per_s, step_time_s.
nlohmann::json epoch_record(const TrainOptions& options, const TrainSummary& run, const EpochSummary& epoch,
                            const std::vector<std::string>& argv);
/// kind "train": the DESIGN 3.5 keys (model, mode, ranks, grid, global_batch, steps, epochs,
/// final_loss, test_accuracy, images_per_s, step_time_s, sent_bytes_per_rank,
/// predicted_sent_bytes_per_rank, phases) and the run's settings.
nlohmann::json train_record(const TrainOptions& options, const TrainSummary& run, const std::vector<std::string>& argv);

/// Comment lines naming the model, backend, threads, data and settings, then the epoch columns.
void print_run_header(std::ostream& out, const TrainOptions& options, const TrainSummary& run, bool normalised);
void print_epoch_line(std::ostream& out, const EpochSummary& epoch);
/// Phase times, then the summary table (model, mode, ranks, epochs, final loss, test accuracy,
/// images/s, step time split into compute, comm and idle).
void print_summary(std::ostream& out, const TrainOptions& options, const TrainSummary& run);
/// Time per layer and step, forward and backward.
void print_layer_profile(std::ostream& out, const Model& model, const LayerProfile& profile, size_t steps);

}  // namespace cclab::train
