// Training checkpoints (DESIGN 3.6): everything a resumed run needs to continue with exactly the
// losses of an uninterrupted one. Training has no stateful RNG: initial weights, synthetic data and
// the shuffle order of every epoch are pure functions of (seed, epoch) (model/random.h,
// data/loader.h), so the state is the parameters, SGD's momentum buffer and the count of steps done.
//
// File DIR/checkpoint.bin (or one per rank, see checkpoint_path), little-endian, written atomically
// (DIR/checkpoint.tmp, fsync, rename):
//   "CCLABCKP" magic, u32 version (2),
//   header: strings (u32 length + bytes) model spec, data source, mode, layout; u64 parameters, ranks,
//           global batch, seed; f64 learning rate, momentum;
//   u64 payload bytes, payload: u64 steps done, u64 parameter count, f32 parameters[],
//           f32 velocity[] (same count);
//   u64 FNV-1a 64 of the payload.
// Loading checks the magic, version, that the header matches the current run, the length and the
// checksum, and throws UsageError naming the file otherwise.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace cclab::train {

struct CheckpointHeader {
  std::string model, data, mode;
  std::string layout;  // how the mode split the model, when not a function of the options (pipeline stages)
  uint64_t parameters = 0, ranks = 1, global_batch = 0, seed = 0;
  double learning_rate = 0, momentum = 0;
};

struct CheckpointState {
  uint64_t steps = 0;  // global steps done
  std::vector<float> parameters, velocity;
};

/// DIR/checkpoint.bin for state every rank shares (part -1: data parallel), DIR/checkpoint.rankR.bin
/// for rank R's own part of the model (tensor- and pipeline-parallel ranks hold different parts).
std::string checkpoint_path(const std::string& directory, int part = -1);

/// The checksum a checkpoint file stores after its payload.
uint64_t checkpoint_checksum(const char* data, size_t size);

/// UsageError when something in `directory` stands where a checkpoint file goes (a directory named
/// checkpoint*.bin or .tmp), so the run fails before training rather than at its first checkpoint.
void check_checkpoint_directory(const std::string& directory);

/// Writes `state` atomically to checkpoint_path(directory, part), creating the directory. Throws Error.
void write_checkpoint(const std::string& directory, int part, const CheckpointHeader& header,
                      std::span<const float> parameters, std::span<const float> velocity, uint64_t steps);

/// Reads checkpoint_path(directory, part); throws UsageError (one line naming the file) when it is
/// missing, truncated, corrupt or was written by an incompatible run.
CheckpointState read_checkpoint(const std::string& directory, int part, const CheckpointHeader& expected);

/// The layout recorded in checkpoint_path(directory, part), or "" when the file is missing or
/// unreadable (read_checkpoint then says why). A resumed run splits the model the same way.
std::string read_checkpoint_layout(const std::string& directory, int part);

}  // namespace cclab::train
