#include "results.h"

#include <mpi.h>
#include <unistd.h>

#include <filesystem>

#include "cclab/error.h"
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

}  // namespace

nlohmann::json environment_description() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  nlohmann::json env;
  env["host"] = host;
  env["cpu"] = cpu_model();
  env["cores"] = sysconf(_SC_NPROCESSORS_ONLN);
  env["gpu"] = nullptr;  // host-memory transports only in this build
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
  stream_.open(path, std::ios::app);
  if (!stream_) throw UsageError("cannot open results file '" + path + "' for appending");
}

void ResultWriter::write(const nlohmann::json& record) {
  if (!stream_.is_open()) return;
  stream_ << record.dump() << '\n';
  stream_.flush();
  if (!stream_) throw Error("writing results to '" + path_ + "' failed");
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
