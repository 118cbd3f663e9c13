#include <iostream>

#include "cclab/algorithm.h"
#include "cclab/comm.h"
#include "cclab/implementation.h"
#include "commands.h"
#include "results.h"

namespace cclab {

std::string version_string() {
  const nlohmann::json env = environment_description();
  return "cclab " + env["cclab"].get<std::string>() + " (git " + env["git"].get<std::string>() + ")";
}

CommandAction add_info_command(CLI::App& app) {
  app.add_subcommand("info", "Show versions, hardware, transports and implementations of this build");
  return [] {
    const nlohmann::json env = environment_description();
    auto text = [](const nlohmann::json& value) {
      return value.is_null() ? std::string("not built") : value.get<std::string>();
    };
    std::cout << "cclab       " << env["cclab"].get<std::string>() << " (git " << env["git"].get<std::string>() << ")\n"
              << "host        " << env["host"].get<std::string>() << "\n"
              << "cpu         " << env["cpu"].get<std::string>() << " (" << env["cores"] << " cores online)\n"
              << "gpu         none used by this build\n"
              << "ucx         " << env["ucx"].get<std::string>() << "\n"
              << "mpi         " << env["mpi"].get<std::string>() << "\n"
              << "cuda        " << text(env["cuda"]) << " (detected at build time, not used yet)\n"
              << "nccl        " << text(env["nccl"]) << " (detected at build time, not used yet)\n"
              << "transports  ";
    for (const std::string& name : available_transports()) std::cout << name << " (host memory) ";
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
    }
    return 0;
  };
}

}  // namespace cclab
