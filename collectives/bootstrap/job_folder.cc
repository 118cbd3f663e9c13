#include "bootstrap/job_folder.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "cclab/error.h"

namespace cclab {
namespace {

// What the supervisor writes to its janitor: a pid to watch, or kDone.
using JanitorMessage = std::int32_t;
constexpr JanitorMessage kDone = 0;

// mpirun stops its ranks within its own grace period after our SIGTERM; past this the janitor
// removes the folders anyway.
constexpr auto kWatchedProcessDeadline = std::chrono::seconds(15);

void remove_tree(const std::string& path) {
  // Depth first, never following links or crossing into another file system.
  ::nftw(
      path.c_str(),
      [](const char* entry, const struct stat*, int, FTW*) {
        ::remove(entry);  // what cannot be removed stays; the rest still goes
        return 0;
      },
      16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/// Whether `pid` has ended: no such process, or a zombie nobody reaped yet.
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* stat = std::fopen(path, "r");
  if (stat == nullptr) return true;
  char state = '?';
  // "pid (comm) state ...": comm may hold spaces and parentheses, so the state follows the last ')'.
  char line[512];
  const size_t length = std::fread(line, 1, sizeof line - 1, stat);
  std::fclose(stat);
  line[length] = '\0';
  if (const char* close = std::strrchr(line, ')'); close != nullptr && close[1] == ' ') state = close[2];
  return state == 'Z' || state == 'X';
}

[[noreturn]] void run_janitor(int from_supervisor, const std::vector<std::string>& folders) {
  pid_t watched = 0;
  for (;;) {
    JanitorMessage message = 0;
    const ssize_t n = ::recv(from_supervisor, &message, sizeof message, MSG_WAITALL);
    if (n < 0 && errno == EINTR) continue;
    if (n == sizeof message && message == kDone) _exit(0);
    if (n == sizeof message) {
      watched = message;
      continue;
    }
    break;  // end of file: the supervisor died without saying it was done
  }
  const auto deadline = std::chrono::steady_clock::now() + kWatchedProcessDeadline;
  while (watched > 0 && !process_gone(watched) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (const auto& folder : folders) remove_tree(folder);
  _exit(0);
}

}  // namespace

JobFolder::JobFolder(const std::string& parent) {
  std::string pattern = parent + "/cclab-" + std::to_string(::getpid()) + "-XXXXXX";
  if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

JobFolder::~JobFolder() {
  if (!path_.empty()) remove_tree(path_);
}

FolderJanitor::FolderJanitor(std::vector<std::string> folders) {
  // A socket rather than a pipe: a write to a janitor that is gone must not raise SIGPIPE in us.
  int channel[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) != 0)
    throw Error("socketpair: " + std::string(std::strerror(errno)));
  UniqueFd read_end(channel[0]), write_end(channel[1]);
  // Fork twice: the janitor's parent exits at once, so the janitor is adopted by init (or an outer
  // subreaper), never by us.
  const pid_t middle = ::fork();
  if (middle < 0) throw Error("cannot start the job folders' janitor: fork: " + std::string(std::strerror(errno)));
  if (middle == 0) {
    ::setsid();
    if (::fork() != 0) _exit(0);
    // Hold nothing of the job's open: a pipe reading our stdout must see its end when we end.
    const int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd <= 2; ++fd) ::dup2(null, fd);
    ::dup2(channel[0], 3);
    ::close_range(4, ~0U, 0);
    run_janitor(3, folders);
  }
  while (::waitpid(middle, nullptr, 0) < 0 && errno == EINTR) {
  }
  to_janitor_ = std::move(write_end);
}

FolderJanitor::~FolderJanitor() {
  const JanitorMessage done = kDone;
  [[maybe_unused]] ssize_t ignored = ::send(to_janitor_.get(), &done, sizeof done, MSG_NOSIGNAL);
}

void FolderJanitor::watch(pid_t pid) {
  const JanitorMessage message = pid;
  [[maybe_unused]] ssize_t ignored = ::send(to_janitor_.get(), &message, sizeof message, MSG_NOSIGNAL);
}

}  // namespace cclab
