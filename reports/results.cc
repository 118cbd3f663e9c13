#include "results.h"

#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "cclab/error.h"
#include "cclab/reduce.h"
#ifdef CCLAB_HAVE_CUDA
#include "cclab/cuda_devices.h"
#endif
#include "cclab_git_revision.h"
#include "cclab_version.h"
#include "transports/ucx/ucx_transport.h"

namespace cclab {
namespace {

std::string this_host() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

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
  nlohmann::json env;
  env["host"] = this_host();
  env["cpu"] = cpu_model();
  env["cores"] = sysconf(_SC_NPROCESSORS_ONLN);
  env["cpu_kernels"] = kernel_level_name(best_kernel_level());
  env["gpu"] = gpu_names();
  env["cclab"] = CCLAB_VERSION;
  env["git"] = CCLAB_GIT_REVISION;
  env["git_dirty"] = CCLAB_GIT_DIRTY == 1;  // at build time
  env["build_type"] = CCLAB_BUILD_TYPE;
  env["compiler"] = CCLAB_COMPILER;
  env["ucx"] = UcxTransport::version();
  env["mpi"] = mpi_version();
  env["cuda"] = CCLAB_CUDA_VERSION[0] ? nlohmann::json(CCLAB_CUDA_VERSION) : nlohmann::json(nullptr);
  env["nccl"] = CCLAB_NCCL_VERSION[0] ? nlohmann::json(CCLAB_NCCL_VERSION) : nlohmann::json(nullptr);
  return env;
}

namespace {

struct RunIdentity {
  std::string id, start_time;
  nlohmann::json hosts = nlohmann::json::array({this_host()});
  nlohmann::json settings = nlohmann::json::object();
};

// Variables that change what a run measures; launch identity (rank, store, the records' own
// fields) and secrets stay out.
bool is_setting(const std::string& name) {
  for (const char* identity : {"CCLAB_TOKEN", "CCLAB_RUN_ID", "CCLAB_RUN_START", "CCLAB_RANK", "CCLAB_WORLD_SIZE",
                               "CCLAB_STORE", "CCLAB_LOCAL_LAUNCH", "CCLAB_BINDING"})
    if (name == identity) return false;
  for (const char* prefix : {"UCX_", "OMPI_MCA_", "NCCL_", "CCLAB_", "OMP_", "MKL_"})
    if (name.rfind(prefix, 0) == 0) return true;
  return false;
}

RunIdentity& run_identity() {
  static RunIdentity identity = [] {
    RunIdentity made;
    if (const char* id = std::getenv("CCLAB_RUN_ID")) {
      made.id = id;
    } else {
      std::random_device random;
      char text[17];
      std::snprintf(text, sizeof text, "%08x%08x", random(), random());
      made.id = text;
    }
    if (const char* start = std::getenv("CCLAB_RUN_START")) {
      made.start_time = start;
    } else {
      const std::time_t now = std::time(nullptr);
      char text[32];
      std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
      made.start_time = text;
    }
    for (char** entry = environ; *entry != nullptr; ++entry) {
      const std::string text = *entry;
      const size_t equals = text.find('=');
      if (equals != std::string::npos && is_setting(text.substr(0, equals)))
        made.settings[text.substr(0, equals)] = text.substr(equals + 1);
    }
    return made;
  }();
  return identity;
}

}  // namespace

const std::string& run_id() { return run_identity().id; }
const std::string& run_start_time() { return run_identity().start_time; }

namespace {
// Ranks that are threads of one process (device-loopback) share the identity: its hosts are
// written and read under this lock.
std::mutex hosts_mutex;
}  // namespace

void describe_job(Comm& comm) {
  std::vector<std::string> hosts = comm.allgather(this_host());
  std::lock_guard lock(hosts_mutex);
  run_identity().hosts = std::move(hosts);
}

nlohmann::json base_record(const std::string& kind, const std::vector<std::string>& argv) {
  static const nlohmann::json env = environment_description();
  const RunIdentity& identity = run_identity();
  std::lock_guard lock(hosts_mutex);
  return {{"schema", kResultSchema}, {"kind", kind},         {"argv", argv},
          {"env", env},              {"run_id", identity.id}, {"start_time", identity.start_time},
          {"hosts", identity.hosts}, {"settings", identity.settings}};
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
    throw Error("writing results to '" + path_ + "' failed" +
                (wrote < 0 ? std::string(": ") + std::strerror(errno) : ""));
}

}  // namespace cclab
