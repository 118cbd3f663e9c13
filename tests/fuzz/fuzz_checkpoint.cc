// read_checkpoint (trainers/checkpoint.h) on any file: it returns the state of the run it expects,
// or throws UsageError. Each input is read twice: as it is, and with its payload length and checksum
// made to match its bytes, so that mutated payloads get past the checksum to the checks behind it.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cclab/error.h"
#include "checkpoint.h"
#include "fuzz_input_file.h"

namespace {

// The run the seeds (corpus/checkpoint/) were written for, by write_checkpoint.
cclab::train::CheckpointHeader seed_header() {
  cclab::train::CheckpointHeader header;
  header.model = "mlp:4";
  header.data = "synthetic:2x2";
  header.mode = "data";
  header.layout = "";
  header.parameters = 3;
  header.ranks = 2;
  header.global_batch = 8;
  header.seed = 7;
  header.learning_rate = 0.1;
  header.momentum = 0.9;
  return header;
}

// Where the payload length sits in a file with `header` (checkpoint.h: magic, version, four
// strings, four u64 and two f64).
size_t payload_length_offset(const cclab::train::CheckpointHeader& header) {
  size_t offset = 8 + 4;
  for (const std::string* text : {&header.model, &header.data, &header.mode, &header.layout})
    offset += 4 + text->size();
  return offset + 4 * 8 + 2 * 8;
}

void read(const cclab::fuzz::InputFile& file, const std::string& bytes,
          const cclab::train::CheckpointHeader& expected) {
  file.write(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  const std::string directory = file.directory().string();
  cclab::train::read_checkpoint_layout(directory, -1);  // never throws: "" for a file it cannot read
  try {
    const cclab::train::CheckpointState state = cclab::train::read_checkpoint(directory, -1, expected);
    if (state.parameters.size() != expected.parameters || state.velocity.size() != expected.parameters) std::abort();
  } catch (const cclab::UsageError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const cclab::fuzz::InputFile file("checkpoint.bin");
  static const cclab::train::CheckpointHeader expected = seed_header();
  std::string bytes(reinterpret_cast<const char*>(data), size);
  read(file, bytes, expected);

  const size_t length_at = payload_length_offset(expected);
  if (bytes.size() < length_at + 2 * sizeof(uint64_t)) return 0;
  const uint64_t payload_length = bytes.size() - length_at - 2 * sizeof(uint64_t);
  const uint64_t checksum =
      cclab::train::checkpoint_checksum(bytes.data() + length_at + sizeof(uint64_t), payload_length);
  std::memcpy(bytes.data() + length_at, &payload_length, sizeof payload_length);
  std::memcpy(bytes.data() + bytes.size() - sizeof checksum, &checksum, sizeof checksum);
  read(file, bytes, expected);
  return 0;
}
