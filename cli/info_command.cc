#include <iostream>

#include "backends/cuda/cuda_backend.h"
#include "cclab/algorithm.h"
#ifdef CCLAB_HAVE_CUDA
#include "cclab/cuda_devices.h"
#endif
#include "cclab/comm.h"
#include "cclab/device.h"
#include "cclab/implementation.h"
#include "commands.h"
#include "results.h"

namespace cclab {

std::string version_string() {
  const nlohmann::json env = environment_description();
  return "cclab " + env["cclab"].get<std::string>() + " (git " + env["git"].get<std::string>() + ")";
}

namespace {

std::string gpu_line(const nlohmann::json& env) {
  if (env["cuda"].is_null()) return "none: this build has no CUDA";
  if (!env["gpu"].is_null()) {
    std::string names;
    for (const auto& name : env["gpu"]) names += (names.empty() ? "" : "; ") + name.get<std::string>();
    return names;
  }
#ifdef CCLAB_HAVE_CUDA
  return "none: " + cuda::find_devices().missing;
#else
  return "none";
#endif
}

std::string cuda_line(const nlohmann::json& env) {
  if (env["cuda"].is_null()) return "not built";
#ifdef CCLAB_HAVE_CUDA
  return env["cuda"].get<std::string>() + " (reduce kernels for " + cuda::built_architectures() + ")";
#else
  return env["cuda"].get<std::string>();
#endif
}

// The NCCL the build was compiled against, and the one that loads here (they may differ).
std::string nccl_line(const nlohmann::json& env) {
  if (env["nccl"].is_null()) return "not built";
  const std::string why = nccl_unavailable_reason();
  return "built against " + env["nccl"].get<std::string>() + "; " +
         (why.empty() ? "loads " + nccl_version() : "does not load: " + why);
}

}  // namespace

CommandAction add_info_command(CLI::App& app) {
  app.add_subcommand("info", "Show versions, hardware, transports and implementations of this build");
  return [] {
    const nlohmann::json env = environment_description();
    std::cout << "cclab       " << env["cclab"].get<std::string>() << " (git " << env["git"].get<std::string>() << ")\n"
              << "host        " << env["host"].get<std::string>() << "\n"
              << "cpu         " << env["cpu"].get<std::string>() << " (" << env["cores"]
              << " cores online; reduce kernels " << env["cpu_kernels"].get<std::string>() << ")\n"
              << "gpu         " << gpu_line(env) << "\n"
              << "ucx         " << env["ucx"].get<std::string>() << "\n"
              << "mpi         " << env["mpi"].get<std::string>() << "\n"
              << "cuda        " << cuda_line(env) << "\n"
              << "nccl        " << nccl_line(env) << "\n"
              << "cudnn       " << train::describe_cuda_training_libraries() << "\n"
              << "transports  ";
    for (const std::string& name : available_transports()) std::cout << name << " (host memory) ";
    if (nccl_unavailable_reason().empty()) std::cout << "nccl (GPU memory, bench collectives with --mem cuda) ";
#ifdef CCLAB_HAVE_CUDA
    std::cout << "device-loopback (GPU memory, bench collectives with --mem cuda; ranks as threads sharing one GPU)";
#endif
    std::cout << "\nimplementations:\n";
    for (Collective collective : {Collective::allreduce, Collective::broadcast, Collective::reduce,
                                  Collective::reduce_scatter, Collective::allgather}) {
      for (const Algorithm& algorithm : algorithm_registry())
        if (algorithm.collective == collective)
          std::printf("  %-14s %-21s hand-written: %s\n", std::string(collective_name(collective)).c_str(),
                      algorithm.name.c_str(), algorithm.description.c_str());
      for (const std::string& vendor : vendor_implementation_names(collective))
        std::printf("  %-14s %-21s vendor reference\n", std::string(collective_name(collective)).c_str(),
                    vendor.c_str());
      if (nccl_unavailable_reason().empty())
        std::printf("  %-14s %-21s vendor reference on GPU memory (--mem cuda)\n",
                    std::string(collective_name(collective)).c_str(), "nccl");
    }
    return 0;
  };
}

}  // namespace cclab
