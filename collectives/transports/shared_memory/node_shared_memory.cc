#include "cclab/node_shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "cclab/comm.h"

namespace cclab {
namespace {

std::string system_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// Closes a file descriptor when it goes out of scope.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::unique_ptr<NodeSharedMemory> NodeSharedMemory::create(Comm& comm, size_t bytes_per_rank, std::string* why_not) {
  if (comm.topology().nodes() != 1) {
    if (why_not) *why_not = "the ranks are on " + std::to_string(comm.topology().nodes()) + " nodes";
    return nullptr;
  }
  return create_on_each_node(comm, bytes_per_rank, why_not);
}

// Each node's leader (its lowest rank) creates an anonymous memory file (memfd: no name to clean
// up, no /dev/shm size limit); its node's other ranks open it through /proc/<pid>/fd/<n> (allowed
// to processes of the same user, which the CMA copies of the transport need as well) and map it;
// the leader closes its descriptor only after every rank has mapped. The mapping lives until the
// node's last rank unmaps.
std::unique_ptr<NodeSharedMemory> NodeSharedMemory::create_on_each_node(Comm& comm, size_t bytes_per_rank,
                                                                        std::string* why_not) {
  const std::vector<int>& node_of_rank = comm.topology().node_of_rank;
  const int node = node_of_rank[size_t(comm.rank())];
  std::vector<int> slot_of_rank(node_of_rank.size(), -1);
  int ranks = 0, leader = -1;
  for (size_t r = 0; r < node_of_rank.size(); ++r)
    if (node_of_rank[r] == node) {
      if (leader < 0) leader = int(r);
      slot_of_rank[r] = ranks++;
    }
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  const size_t segment_bytes = (std::max<size_t>(bytes_per_rank, 1) + page - 1) / page * page;
  const size_t total = segment_bytes * size_t(ranks);

  // The file's name carries a random token, and a rank opens the path only if it leads to that
  // file: a wrong --ranks-per-node could put ranks of other hosts on "one node", where the same
  // pid and descriptor number would be some other file.
  FileDescriptor file;
  std::string failure, announced;
  if (comm.rank() == leader) {
    const std::string name = "cclab-" + std::to_string(std::random_device{}()) + std::to_string(::getpid());
    file.fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
    if (file.fd < 0)
      failure = system_error("memfd_create");
    else if (::ftruncate(file.fd, off_t(total)) != 0)
      failure = system_error("ftruncate of " + std::to_string(total) + " bytes");
    else
      announced = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(file.fd) + " /memfd:" + name;
  }
  const std::string announcement = comm.allgather(announced)[size_t(leader)];
  const size_t space = announcement.find(' ');
  const std::string path = announcement.substr(0, space),
                    target = space == std::string::npos ? "" : announcement.substr(space + 1);
  if (comm.rank() != leader && !path.empty()) {
    char link[256] = {};
    const ssize_t length = ::readlink(path.c_str(), link, sizeof(link) - 1);
    if (length < 0)
      failure = system_error("readlink " + path);
    else if (std::string(link, size_t(length)).rfind(target, 0) != 0)
      failure = path + " is not rank " + std::to_string(leader) + "'s memory file (another host?)";
    else if ((file.fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC)) < 0)
      failure = system_error("open " + path);
  }
  void* mapped = MAP_FAILED;
  if (file.fd >= 0 && failure.empty()) {
    mapped = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd, 0);
    if (mapped == MAP_FAILED) failure = system_error("mmap of " + std::to_string(total) + " bytes");
  }
  // Every rank learns whether every other one mapped it: all use it, or none does (when a leader
  // could not create it, its own failure says why).
  std::string first_failure;
  const std::vector<std::string> verdicts = comm.allgather(failure);
  for (size_t r = 0; r < verdicts.size() && first_failure.empty(); ++r)
    if (!verdicts[r].empty()) first_failure = "rank " + std::to_string(r) + ": " + verdicts[r];
  if (!first_failure.empty()) {
    if (mapped != MAP_FAILED) ::munmap(mapped, total);
    if (why_not) *why_not = first_failure;
    return nullptr;
  }
  return std::unique_ptr<NodeSharedMemory>(
      new NodeSharedMemory(static_cast<std::byte*>(mapped), segment_bytes, std::move(slot_of_rank)));
}

NodeSharedMemory::~NodeSharedMemory() { ::munmap(base_, segment_bytes_ * size_t(ranks_)); }

}  // namespace cclab
