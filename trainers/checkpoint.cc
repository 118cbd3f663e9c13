#include "checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "cclab/error.h"

namespace cclab::train {
namespace {

constexpr char kMagic[8] = {'C', 'C', 'L', 'A', 'B', 'C', 'K', 'P'};
constexpr uint32_t kVersion = 2;  // 2: the model split (layout) in the header

class Writer {
 public:
  template <typename T>
  void put(const T& value) {
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  void put_string(const std::string& text) {
    put(uint32_t(text.size()));
    bytes_ += text;
  }
  void put_floats(std::span<const float> values) {
    bytes_.append(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

struct Truncated {};

class Reader {
 public:
  Reader(const char* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  T get() {
    T value;
    need(sizeof value);
    std::memcpy(&value, data_ + at_, sizeof value);
    at_ += sizeof value;
    return value;
  }
  std::string get_string() {
    const uint32_t size = get<uint32_t>();
    need(size);
    std::string text(data_ + at_, size);
    at_ += size;
    return text;
  }
  std::vector<float> get_floats(size_t count) {
    if (count > (size_ - at_) / sizeof(float)) throw Truncated{};
    std::vector<float> values(count);
    std::memcpy(values.data(), data_ + at_, count * sizeof(float));
    at_ += count * sizeof(float);
    return values;
  }
  const char* here() const { return data_ + at_; }
  size_t left() const { return size_ - at_; }
  void skip(size_t count) {
    need(count);
    at_ += count;
  }

 private:
  void need(size_t count) {
    if (count > size_ - at_) throw Truncated{};
  }
  const char* data_;
  size_t size_, at_ = 0;
};

void write_header(Writer& out, const CheckpointHeader& h) {
  out.put_string(h.model);
  out.put_string(h.data);
  out.put_string(h.mode);
  out.put_string(h.layout);
  out.put(h.parameters);
  out.put(h.ranks);
  out.put(h.global_batch);
  out.put(h.seed);
  out.put(h.learning_rate);
  out.put(h.momentum);
}

std::string number(double value) {
  std::ostringstream text;
  text.precision(17);
  text << value;
  return text.str();
}

// The first field in which `found` differs from `expected`, as "field X (this run: Y)", or "".
std::string mismatch(const CheckpointHeader& found, const CheckpointHeader& expected) {
  const auto differs = [](const std::string& field, const std::string& a, const std::string& b) {
    return field + " " + a + " (this run: " + b + ")";
  };
  if (found.model != expected.model) return differs("--model", "'" + found.model + "'", "'" + expected.model + "'");
  if (found.layout != expected.layout) return differs("model split", found.layout, expected.layout);
  if (found.parameters != expected.parameters)
    return differs("parameter count", std::to_string(found.parameters), std::to_string(expected.parameters));
  if (found.data != expected.data) return differs("--data", "'" + found.data + "'", "'" + expected.data + "'");
  if (found.mode != expected.mode) return differs("--mode", found.mode, expected.mode);
  if (found.ranks != expected.ranks)
    return differs("ranks", std::to_string(found.ranks), std::to_string(expected.ranks));
  if (found.global_batch != expected.global_batch)
    return differs("--batch", std::to_string(found.global_batch), std::to_string(expected.global_batch));
  if (found.seed != expected.seed) return differs("--seed", std::to_string(found.seed), std::to_string(expected.seed));
  if (found.learning_rate != expected.learning_rate)
    return differs("--lr", number(found.learning_rate), number(expected.learning_rate));
  if (found.momentum != expected.momentum)
    return differs("--momentum", number(found.momentum), number(expected.momentum));
  return "";
}

}  // namespace

uint64_t checkpoint_checksum(const char* data, size_t size) {  // FNV-1a, 64 bits
  uint64_t hash = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i) {
    hash ^= uint8_t(data[i]);
    hash *= 1099511628211ull;
  }
  return hash;
}

namespace {
std::string checkpoint_file(const std::string& directory, int part, const char* extension) {
  const std::string stem = part < 0 ? "checkpoint" : "checkpoint.rank" + std::to_string(part);
  return (std::filesystem::path(directory) / (stem + extension)).string();
}
}  // namespace

std::string checkpoint_path(const std::string& directory, int part) { return checkpoint_file(directory, part, ".bin"); }

void check_checkpoint_directory(const std::string& directory) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    const bool ours = name.rfind("checkpoint", 0) == 0 && (name.ends_with(".bin") || name.ends_with(".tmp"));
    if (ours && entry.is_directory(error))
      throw UsageError(std::string("--checkpoint-dir ").append(directory).append(": ").append(name).append(
          " is a directory, where a checkpoint goes"));
  }
}

void write_checkpoint(const std::string& directory, int part, const CheckpointHeader& header,
                      std::span<const float> parameters, std::span<const float> velocity, uint64_t steps) {
  if (parameters.size() != velocity.size()) throw Error("checkpoint: parameters and momentum differ in size");
  Writer payload;
  payload.put(steps);
  payload.put(uint64_t(parameters.size()));
  payload.put_floats(parameters);
  payload.put_floats(velocity);
  Writer file;
  file.bytes().append(kMagic, sizeof kMagic);
  file.put(kVersion);
  write_header(file, header);
  file.put(uint64_t(payload.bytes().size()));
  file.bytes() += payload.bytes();
  file.put(checkpoint_checksum(payload.bytes().data(), payload.bytes().size()));

  std::error_code error;
  std::filesystem::create_directories(directory, error);
  const std::string temporary = checkpoint_file(directory, part, ".tmp");
  const std::string final_path = checkpoint_path(directory, part);
  const auto fail = [&](const std::string& what) {
    throw Error("cannot write checkpoint " + temporary + ": " + what + ": " + std::strerror(errno));
  };
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("open");
  const std::string& bytes = file.bytes();
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      fail("write");
    }
    done += size_t(wrote);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("fsync");
  }
  if (::close(fd) != 0) fail("close");
  if (std::rename(temporary.c_str(), final_path.c_str()) != 0)
    throw Error("cannot rename " + temporary + " to " + final_path + ": " + std::strerror(errno));
  // Make the rename durable too.
  const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

namespace {

std::string read_bytes(const std::string& path, bool& found) {
  std::ifstream in(path, std::ios::binary);
  found = bool(in);
  return found ? std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()) : std::string();
}

// Magic, version and header of a checkpoint's bytes; `reader` is left at the payload length.
CheckpointHeader parse_header(const std::string& bytes, Reader& reader,
                              const std::function<UsageError(std::string)>& refuse) {
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw refuse("not a cclab checkpoint (bad magic)");
  reader.skip(sizeof kMagic);
  const uint32_t version = reader.get<uint32_t>();
  if (version != kVersion)
    throw refuse("version " + std::to_string(version) + ", this build reads version " + std::to_string(kVersion));
  CheckpointHeader found;
  found.model = reader.get_string();
  found.data = reader.get_string();
  found.mode = reader.get_string();
  found.layout = reader.get_string();
  found.parameters = reader.get<uint64_t>();
  found.ranks = reader.get<uint64_t>();
  found.global_batch = reader.get<uint64_t>();
  found.seed = reader.get<uint64_t>();
  found.learning_rate = reader.get<double>();
  found.momentum = reader.get<double>();
  return found;
}

}  // namespace

std::string read_checkpoint_layout(const std::string& directory, int part) {
  bool found = false;
  const std::string bytes = read_bytes(checkpoint_path(directory, part), found);
  if (!found) return "";
  try {
    Reader reader(bytes.data(), bytes.size());
    return parse_header(bytes, reader, [](const std::string& why) { return UsageError(why); }).layout;
  } catch (...) {  // read_checkpoint says what is wrong with the file
    return "";
  }
}

CheckpointState read_checkpoint(const std::string& directory, int part, const CheckpointHeader& expected) {
  const std::string path = checkpoint_path(directory, part);
  const auto refuse = [&](const std::string& why) -> UsageError {
    return UsageError("cannot resume from checkpoint " + path + ": " + why);
  };
  bool exists = false;
  const std::string bytes = read_bytes(path, exists);
  if (!exists) throw refuse("no such file (run once with --checkpoint-dir first)");
  try {
    Reader reader(bytes.data(), bytes.size());
    const CheckpointHeader found = parse_header(bytes, reader, refuse);
    const uint64_t payload_size = reader.get<uint64_t>();
    if (payload_size > reader.left() || reader.left() - payload_size != sizeof(uint64_t))
      throw refuse("truncated or wrong length (" + std::to_string(bytes.size()) + " bytes)");
    const char* payload = reader.here();
    const uint64_t computed = checkpoint_checksum(payload, payload_size);
    Reader body(payload, payload_size);
    reader.skip(payload_size);
    if (reader.get<uint64_t>() != computed) throw refuse("checksum mismatch (the file is corrupt)");
    if (const std::string field = mismatch(found, expected); !field.empty())
      throw refuse("written by an incompatible run: " + field);
    CheckpointState state;
    state.steps = body.get<uint64_t>();
    const uint64_t count = body.get<uint64_t>();
    if (count != expected.parameters) throw refuse("holds " + std::to_string(count) + " parameters");
    state.parameters = body.get_floats(count);
    state.velocity = body.get_floats(count);
    if (body.left() != 0) throw refuse("payload has trailing bytes");
    return state;
  } catch (const Truncated&) {
    throw refuse("truncated (" + std::to_string(bytes.size()) + " bytes)");
  }
}

}  // namespace cclab::train
