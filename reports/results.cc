#include "results.h"

#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cclab/error.h"
#ifdef CCLAB_HAVE_CUDA
#include "cclab/cuda_devices.h"
#endif
#include "cclab_version.h"
#include "transports/ucx/ucx_transport.h"

namespace cclab {
namespace {

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string mpi_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string version(text, size_t(length));
  if (auto end = version.find_first_of(",\n"); end != std::string::npos) version.resize(end);
  return version;
}

// The GPUs this process sees, or null: none, or a build without CUDA.
nlohmann::json gpu_names() {
#ifdef CCLAB_HAVE_CUDA
  const cuda::Devices devices = cuda::find_devices();
  if (!devices.names.empty()) return devices.names;
#endif
  return nullptr;
}

}  // namespace

nlohmann::json environment_description() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  nlohmann::json env;
  env["host"] = host;
  env["cpu"] = cpu_model();
  env["cores"] = sysconf(_SC_NPROCESSORS_ONLN);
  env["gpu"] = gpu_names();
  env["cclab"] = CCLAB_VERSION;
  env["git"] = CCLAB_GIT_REVISION;
  env["ucx"] = UcxTransport::version();
  env["mpi"] = mpi_version();
  env["cuda"] = CCLAB_CUDA_VERSION[0] ? nlohmann::json(CCLAB_CUDA_VERSION) : nlohmann::json(nullptr);
  env["nccl"] = CCLAB_NCCL_VERSION[0] ? nlohmann::json(CCLAB_NCCL_VERSION) : nlohmann::json(nullptr);
  return env;
}

nlohmann::json base_record(const std::string& kind, const std::vector<std::string>& argv) {
  static const nlohmann::json env = environment_description();
  return {{"schema", kResultSchema}, {"kind", kind}, {"argv", argv}, {"env", env}};
}

ResultWriter::ResultWriter(const std::string& path) : path_(path) {
  if (path.empty()) return;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw UsageError("cannot open results file '" + path + "' for appending: " + std::strerror(errno));
}

ResultWriter::~ResultWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultWriter::write(const nlohmann::json& record) {
  if (fd_ < 0) return;
  const std::string line = record.dump() + '\n';
  ssize_t wrote;
  do wrote = ::write(fd_, line.data(), line.size());
  while (wrote < 0 && errno == EINTR);
  // A regular file takes an appending write whole; a short one means the disk is full.
  if (wrote != ssize_t(line.size()))
    throw Error("writing results to '" + path_ + "' failed" + (wrote < 0 ? std::string(": ") + std::strerror(errno) : ""));
}

std::vector<nlohmann::json> read_results(const std::string& path) {
  std::ifstream stream(path);
  if (!stream) throw UsageError("cannot read results file '" + path + "'");
  std::vector<nlohmann::json> records;
  std::string line;
  while (std::getline(stream, line))
    if (!line.empty()) records.push_back(nlohmann::json::parse(line));
  return records;
}

}  // namespace cclab
