// `cclab <command> -n N`: become the supervisor of N ranks on this host (DESIGN 3.1).
//
// The supervisor runs the rendezvous store, starts every rank as a fresh exec of this very binary
// with the same arguments plus CCLAB_* variables, and watches them. When one rank fails, the others
// would otherwise sit in a collective until their timeout, so the supervisor stops them at once and
// says which rank failed and how. With through_mpirun it starts mpirun instead and supervises that.
//
// Leaving nothing behind (docs/design.md, "Stopping a job"): Open MPI keeps its session folder and
// shared-memory segments in folders this supervisor makes for the job and removes once mpirun is gone,
// however the job ended; mpirun runs in its own process group, so a terminal's Ctrl-C reaches only us
// and mpirun is asked to stop once (a second SIGINT makes it exit without cleaning up); and a one-node
// mpirun gets a network namespace of its own, where its all-address listeners reach only loopback.
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/job_folder.h"
#include "bootstrap/job_token.h"
#include "bootstrap/tcp_store_server.h"
#include "bootstrap/unique_fd.h"
#include "cclab/error.h"
#include "cclab/launch.h"

extern char** environ;

// CPU helpers shared with placement.cc (defined there; bootstrap/ has no header for them).
namespace cclab::detail {
std::vector<int> affinity_cpus();
int physical_cores(const std::vector<int>& cpus);
std::string describe_cpus(std::vector<int> cpus);
}  // namespace cclab::detail

namespace cclab {
namespace {

// How long stopped ranks get to exit after SIGTERM before SIGKILL (mpirun needs longer: it has to
// stop its own ranks first).
constexpr auto kRankStopGrace = std::chrono::seconds(2);
constexpr auto kMpirunStopGrace = std::chrono::seconds(5);
// When a rank exits with a usage error, the others usually hit the same error in the same instant:
// give them this long to exit by themselves before calling it a stop.
constexpr auto kUsageErrorGrace = std::chrono::seconds(1);
constexpr int kUsageExitStatus = 2;

/// The signals that stop a job: Ctrl-C, kill, a closed terminal, Ctrl-\\.
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

bool is_stop_signal(int signal) {
  return std::find(std::begin(kStopSignals), std::end(kStopSignals), signal) != std::end(kStopSignals);
}

/// What the children get when the supervisor is asked to stop: SIGINT stays SIGINT (a rank may treat
/// it differently); a hang-up or quit becomes SIGTERM, so that no rank dumps core and mpirun stops its
/// ranks in order.
int forwarded_signal(int signal) { return signal == SIGINT ? SIGINT : SIGTERM; }

/// Blocks the stop signals and SIGCHLD in the calling thread while it supervises, so that they queue
/// up for wait() instead of killing the supervisor before it could stop the ranks. Threads created
/// meanwhile (the store server) inherit the mask, so the process-directed signals wait for us.
class SupervisorSignals {
 public:
  SupervisorSignals() {
    sigemptyset(&handled_);
    for (int signal : kStopSignals) sigaddset(&handled_, signal);
    sigaddset(&handled_, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &handled_, &previous_);
    // An inherited SIGCHLD=SIG_IGN would make the kernel reap the ranks itself, and waitpid could
    // no longer tell how they ended.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    sigaction(SIGCHLD, &default_action, &previous_child_action_);
  }
  ~SupervisorSignals() {
    // Consume a pending SIGCHLD about our (already reaped) ranks, so that a handler the caller had
    // installed does not run for them once the mask is restored.
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    const timespec zero{0, 0};
    while (sigtimedwait(&child, nullptr, &zero) > 0) {
    }
    sigaction(SIGCHLD, &previous_child_action_, nullptr);
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SupervisorSignals(const SupervisorSignals&) = delete;
  SupervisorSignals& operator=(const SupervisorSignals&) = delete;

  /// The mask to give children before exec (a blocked SIGTERM would survive exec and make the
  /// rank unstoppable by our own stop procedure).
  const sigset_t& original_mask() const { return previous_; }

  /// Waits up to `timeout` for one of the signals; returns it, or 0.
  int wait(std::chrono::milliseconds timeout) {
    const timespec limit{static_cast<time_t>(timeout.count() / 1000),
                         static_cast<long>(timeout.count() % 1000) * 1000000};
    const int signal = sigtimedwait(&handled_, nullptr, &limit);
    return signal > 0 ? signal : 0;
  }

 private:
  sigset_t handled_;
  sigset_t previous_;
  struct sigaction previous_child_action_ {};
};

/// How a child gets a network of its own, with only loopback (up): a network namespace (root, or
/// CAP_SYS_ADMIN), or for an unprivileged user a user namespace that maps just this user and group,
/// owning the new network namespace. The maps are written before fork().
struct PrivateNetwork {
  bool wanted = false;
  bool with_user_namespace = false;
  std::string uid_map, gid_map;  // "<id> <id> 1": inside the namespace the user stays who it is
};

/// What to exec: everything prepared before fork(), since the child of a multi-threaded process
/// may only make async-signal-safe calls until exec.
struct ExecPlan {
  std::string path;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::optional<cpu_set_t> affinity;
  int death_signal = SIGKILL;  // what the child gets if the supervisor dies (no orphaned ranks)
  bool own_process_group = false;  // out of the terminal's reach: signals come from the supervisor only
  PrivateNetwork private_network;
};

/// Writes `text` to the file `path` (async-signal-safe); 0 or an errno value.
int write_file(const char* path, const std::string& text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int error = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) ? 0 : errno;
  ::close(fd);
  return error;
}

/// In the child between fork and exec (async-signal-safe calls only): enters the namespaces `network`
/// asks for and brings up loopback, which starts down. Returns 0 or an errno value.
int enter_private_network(const PrivateNetwork& network) {
  if (network.with_user_namespace) {
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return errno;
    // An unprivileged process may map its own ids only after giving up setgroups().
    if (const int error = write_file("/proc/self/setgroups", "deny")) return error;
    if (const int error = write_file("/proc/self/uid_map", network.uid_map)) return error;
    if (const int error = write_file("/proc/self/gid_map", network.gid_map)) return error;
  } else if (::unshare(CLONE_NEWNET) != 0) {
    return errno;
  }
  const int probe = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return errno;
  ifreq request{};
  std::memcpy(request.ifr_name, "lo", 3);
  int error = 0;
  if (::ioctl(probe, SIOCGIFFLAGS, &request) != 0) {
    error = errno;
  } else {
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
    if (::ioctl(probe, SIOCSIFFLAGS, &request) != 0) error = errno;
  }
  ::close(probe);
  return error;
}

/// 0 when a child can enter `network`, else the errno value it met: tried in a child.
int try_private_network(const PrivateNetwork& network) {
  const pid_t pid = ::fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    const int error = enter_private_network(network);
    _exit(error < 126 ? error : EINVAL);  // an exit status holds less than every errno value
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : ECHILD;
}

/// The private network this process can give a child: a plain network namespace if allowed, else one
/// inside a user namespace; not wanted (and `why_not` says why) when neither works.
PrivateNetwork choose_private_network(std::string* why_not) {
  PrivateNetwork network;
  network.wanted = true;
  const int plain_error = try_private_network(network);
  if (plain_error == 0) return network;
  network.with_user_namespace = true;
  network.uid_map = std::to_string(::getuid()) + " " + std::to_string(::getuid()) + " 1";
  network.gid_map = std::to_string(::getgid()) + " " + std::to_string(::getgid()) + " 1";
  const int user_error = try_private_network(network);
  if (user_error == 0) return network;
  *why_not = std::string("a network namespace: ") + std::strerror(plain_error) +
             "; one inside a user namespace: " + std::strerror(user_error);
  return {};
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> result;
  for (auto& text : strings) result.push_back(text.data());
  result.push_back(nullptr);
  return result;
}

/// This process's environment with `overrides` ("NAME=value") replacing any same-named entries.
std::vector<std::string> environment_with(const std::vector<std::string>& overrides) {
  std::vector<std::string> result;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const std::string name = text.substr(0, text.find('='));
    const bool replaced = std::any_of(overrides.begin(), overrides.end(), [&](const std::string& o) {
      return o.compare(0, name.size() + 1, name + "=") == 0;
    });
    if (!replaced) result.push_back(text);
  }
  result.insert(result.end(), overrides.begin(), overrides.end());
  return result;
}

/// The children started so far. Whatever happens (an exception halfway through starting them),
/// none outlives this object unreaped: the destructor kills and reaps those still running.
class Children {
 public:
  struct Child {
    pid_t pid;
    std::string label;  // "rank 3", "mpirun"
    bool running = true;
    int wait_status = 0;
  };

  ~Children() {
    for (auto& child : children_) {
      if (!child.running) continue;
      ::kill(child.pid, SIGKILL);
      while (::waitpid(child.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }

  std::vector<Child>& all() { return children_; }

  /// fork + exec `plan`; Error (with errno's text) if the exec itself failed.
  void start(ExecPlan plan, std::string label, const sigset_t& child_mask) {
    std::vector<char*> argv = pointers(plan.argv);
    std::vector<char*> envp = pointers(plan.env);
    // The child reports a failed exec through this pipe; a successful exec closes it (CLOEXEC).
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) throw Error("pipe: " + std::string(std::strerror(errno)));
    // What the child reports when it cannot exec: which step failed, and errno.
    enum Step : int { binding, network, exec };
    struct Failure {
      int step;
      int error;
    };
    UniqueFd report_read(report[0]), report_write(report[1]);
    const pid_t supervisor = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw Error("cannot start " + label + ": fork: " + std::strerror(errno));
    if (pid == 0) {
      sigprocmask(SIG_SETMASK, &child_mask, nullptr);
      prctl(PR_SET_PDEATHSIG, plan.death_signal);
      // The supervisor may have died before prctl took effect.
      if (::getppid() != supervisor) _exit(127);
      if (plan.own_process_group) ::setpgid(0, 0);
      Failure failure{exec, 0};
      if (plan.affinity && sched_setaffinity(0, sizeof *plan.affinity, &*plan.affinity) != 0) {
        failure = {binding, errno};
      } else if (plan.private_network.wanted &&
                 (failure.error = enter_private_network(plan.private_network)) != 0) {
        failure.step = network;
      } else {
        ::execve(plan.path.c_str(), argv.data(), envp.data());
        failure.error = errno;
      }
      [[maybe_unused]] ssize_t ignored = ::write(report[1], &failure, sizeof failure);
      _exit(127);
    }
    children_.push_back({pid, std::move(label)});
    report_write.reset();
    Failure failure{};
    ssize_t n;
    do {
      n = ::read(report_read.get(), &failure, sizeof failure);
    } while (n < 0 && errno == EINTR);
    if (n == sizeof failure) {
      // Reap it here so the message is about the real cause, not "exited with status 127".
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      children_.back().running = false;
      const std::string step = failure.step == binding   ? "binding to its cores"
                               : failure.step == network ? "its private network namespace"
                                                         : "exec of " + plan.path;
      throw Error("cannot start " + children_.back().label + ": " + step + " failed: " +
                  std::strerror(failure.error));
    }
  }

  /// Sends `signal` to every child still running; returns how many.
  int signal_running(int signal) {
    int count = 0;
    for (auto& child : children_)
      if (child.running && ::kill(child.pid, signal) == 0) ++count;
    return count;
  }

 private:
  std::vector<Child> children_;
};

bool checks_failed(int wait_status) {
  return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == kRankChecksFailedExitStatus;
}

// A rank that died or exited with an error; one whose results failed a check finished its run.
bool failed(int wait_status) {
  return WIFSIGNALED(wait_status) ||
         (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) != 0 && !checks_failed(wait_status));
}

/// The exit status a shell would report for a process that ended with `wait_status`.
int shell_status(int wait_status) {
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 1;
}

std::string signal_text(int signal) {
  const char* name = strsignal(signal);
  return "signal " + std::to_string(signal) + " (" + (name ? name : "unknown") + ")";
}

struct Outcome {
  const Children::Child* first_failure = nullptr;  // the child whose failure stopped the job
  bool stopped_others = false;                     // we signalled at least one child still running
  int received_signal = 0;                         // the stop signal the supervisor got and forwarded
  bool checks_failed = false;                      // a rank finished with results that failed a check
};

/// Waits for every child. On the first failure, or a stop signal to the supervisor, stops the rest:
/// SIGTERM (or the forwarded signal), then SIGKILL after `stop_grace`.
Outcome supervise(Children& children, SupervisorSignals& signals, std::chrono::seconds stop_grace) {
  Outcome outcome;
  const auto never = Clock::time_point::max();
  bool stopping = false;
  Clock::time_point term_at = never, kill_at = never;

  const auto on_signal = [&](int signal) {
    if (!is_stop_signal(signal)) return;  // SIGCHLD only wakes us up to reap
    if (!stopping) {
      // Forward what we got (ranks from the terminal's process group may have it already; a second
      // copy is harmless): a rank may treat SIGINT differently from SIGTERM.
      stopping = true;
      outcome.received_signal = signal;
      if (children.signal_running(forwarded_signal(signal)) > 0) outcome.stopped_others = true;
      term_at = never;
      kill_at = Clock::now() + stop_grace;
    } else {
      // Asked again while stopping: the user does not want to wait for the grace period.
      children.signal_running(SIGKILL);
      kill_at = never;
    }
  };

  for (;;) {
    // Take a pending stop signal before reaping: on Ctrl-C the ranks die of the terminal's
    // SIGINT at the same moment, and that is an interrupted job, not a failed rank.
    on_signal(signals.wait(std::chrono::milliseconds(0)));
    size_t running = 0;
    for (auto& child : children.all()) {
      if (!child.running) continue;
      int status = 0;
      const pid_t reaped = ::waitpid(child.pid, &status, WNOHANG);
      if (reaped == 0 || (reaped < 0 && errno == EINTR)) {
        ++running;
        continue;
      }
      child.running = false;
      child.wait_status = reaped < 0 ? 0 : status;  // ECHILD: someone else reaped it; nothing to report
      if (reaped > 0 && checks_failed(status)) outcome.checks_failed = true;
      if (!stopping && reaped > 0 && failed(status)) {
        stopping = true;
        outcome.first_failure = &child;
        const bool usage_error = WIFEXITED(status) && WEXITSTATUS(status) == kUsageExitStatus;
        term_at = Clock::now() + (usage_error ? std::chrono::duration_cast<Clock::duration>(kUsageErrorGrace)
                                              : Clock::duration::zero());
        kill_at = term_at + stop_grace;
      }
    }
    if (running == 0) break;

    const auto now = Clock::now();
    if (now >= term_at) {
      if (children.signal_running(SIGTERM) > 0) outcome.stopped_others = true;
      term_at = never;
    }
    if (now >= kill_at) {
      children.signal_running(SIGKILL);
      kill_at = never;
    }
    // SIGCHLD or a signal to forward wakes us at once; otherwise poll every 100 ms as a fallback.
    auto wait_for = std::chrono::milliseconds(100);
    for (auto due : {term_at, kill_at})
      if (due != never)
        wait_for = std::min(wait_for, std::chrono::duration_cast<std::chrono::milliseconds>(due - now) +
                                          std::chrono::milliseconds(1));
    on_signal(signals.wait(std::max(wait_for, std::chrono::milliseconds(1))));
  }
  return outcome;
}

/// The processes whose parent is this one, from /proc.
std::vector<pid_t> own_children() {
  std::vector<pid_t> result;
  const std::string self = std::to_string(::getpid());
  struct CloseDirectory {
    void operator()(DIR* directory) const { ::closedir(directory); }
  };
  std::unique_ptr<DIR, CloseDirectory> proc(::opendir("/proc"));
  if (!proc) return result;
  while (const dirent* entry = ::readdir(proc.get())) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state, parent;
    if (rest >> state >> parent && parent == self) result.push_back(static_cast<pid_t>(std::stol(entry->d_name)));
  }
  return result;
}

/// Makes this process the reaper of its orphaned descendants while it lives: ranks whose mpirun died
/// become our children, so that we can wait for them before removing the files they use.
class OrphanReaper {
 public:
  OrphanReaper() {
    ::prctl(PR_GET_CHILD_SUBREAPER, &previous_);
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  ~OrphanReaper() { ::prctl(PR_SET_CHILD_SUBREAPER, previous_); }
  OrphanReaper(const OrphanReaper&) = delete;
  OrphanReaper& operator=(const OrphanReaper&) = delete;

  /// Reaps the adopted processes: they get `grace` to exit (a rank notices its lost daemon), then SIGKILL.
  void reap(std::chrono::seconds grace) {
    const auto kill_at = Clock::now() + grace;
    bool killed = false;
    for (;;) {
      const pid_t reaped = ::waitpid(-1, nullptr, WNOHANG);
      if (reaped > 0) continue;
      if (reaped < 0 && errno != EINTR) return;  // ECHILD: none left
      if (!killed && Clock::now() >= kill_at) {
        for (pid_t orphan : own_children()) ::kill(orphan, SIGKILL);
        killed = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  int previous_ = 0;
};

bool set_in_environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0';
}

std::string this_executable() {
  char path[4096];
  const ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0)
    throw Error("cannot find this program's path (/proc/self/exe): " + std::string(std::strerror(errno)));
  return std::string(path, static_cast<size_t>(length));
}

std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string directories = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t at = 0;
  while (at <= directories.size()) {
    size_t end = directories.find(':', at);
    if (end == std::string::npos) end = directories.size();
    // An empty PATH entry means the current directory.
    const std::string directory = end > at ? directories.substr(at, end - at) : std::string(1, '.');
    at = end + 1;
    const std::string candidate = directory + '/' + program;
    struct stat info {};
    if (::stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

int launch_through_mpirun(const std::vector<std::string>& argv, const LocalLaunchOptions& options) {
  const std::string mpirun = find_on_path("mpirun");
  if (mpirun.empty())
    throw Error("starting the ranks through mpirun needs mpirun on PATH, and there is none (install Open MPI's "
                "mpirun, e.g. the openmpi-bin package)");
  // mpirun counts one slot per physical core and refuses more ranks than slots, or binding two
  // ranks to one core, unless told otherwise.
  const int cores = detail::physical_cores(detail::affinity_cpus());
  ExecPlan plan;
  plan.path = mpirun;
  // No rank reads stdin, and mpirun, in a process group of its own, must not try to (SIGTTIN).
  plan.argv = {"mpirun", "--stdin", "none", "-np", std::to_string(options.ranks)};
  if (options.ranks > cores) plan.argv.push_back("--oversubscribe");
  plan.argv.push_back("--bind-to");
  plan.argv.push_back(options.bind && options.ranks <= cores ? "core" : "none");
  // mpirun's daemon execs this path itself, where /proc/self/exe would mean mpirun: resolve it here.
  plan.argv.push_back(this_executable());
  plan.argv.insert(plan.argv.end(), argv.begin() + 1, argv.end());
  // Open MPI refuses to run as root without both; containers and CI commonly run as root.
  std::vector<std::string> overrides = {"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"};
  // Open MPI's session folder (and PMIx's files in it) and its shared-memory segments go to folders of
  // this job, removed below once mpirun is gone, whether or not it cleaned up. A place the user chose
  // is theirs to clean.
  std::optional<JobFolder> session_folder, segment_folder;
  if (!set_in_environment("OMPI_MCA_orte_tmpdir_base")) {
    const char* tmpdir = std::getenv("TMPDIR");
    session_folder.emplace(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp");
    if (session_folder->path().empty())
      throw Error("cannot make a folder for Open MPI's session files in " + std::string(tmpdir ? tmpdir : "/tmp") +
                  ": " + std::strerror(errno));
    overrides.push_back("OMPI_MCA_orte_tmpdir_base=" + session_folder->path());
  }
  if (!set_in_environment("OMPI_MCA_btl_vader_backing_directory")) {
    segment_folder.emplace("/dev/shm");
    // Without /dev/shm Open MPI puts the segments in its session folder (ours too, when we made it).
    if (!segment_folder->path().empty())
      overrides.push_back("OMPI_MCA_btl_vader_backing_directory=" + segment_folder->path());
  }
  // The ranks all run here: mpirun's daemon channel needs only loopback. Open MPI 4.1 still binds its
  // listeners to every address; a network namespace of its own leaves those only loopback to listen on.
  if (!set_in_environment("OMPI_MCA_oob_tcp_if_include") && !set_in_environment("OMPI_MCA_oob_tcp_if_exclude"))
    overrides.push_back("OMPI_MCA_oob_tcp_if_include=lo");
  std::string why_shared_network;
  plan.private_network = choose_private_network(&why_shared_network);
  if (!plan.private_network.wanted)
    std::fprintf(stderr,
                 "cclab: mpirun runs in this host's network (%s): Open MPI listens on all its addresses "
                 "while the job runs\n",
                 why_shared_network.c_str());
  plan.env = environment_with(overrides);
  // SIGTERM rather than SIGKILL if we die: mpirun then stops its ranks instead of orphaning them.
  plan.death_signal = SIGTERM;
  plan.own_process_group = true;

  // Before the reaper (the janitor must not be adopted by us) and before any thread.
  std::vector<std::string> our_folders;
  for (const auto* folder : {&session_folder, &segment_folder})
    if (*folder && !(*folder)->path().empty()) our_folders.push_back((*folder)->path());
  FolderJanitor janitor(our_folders);
  SupervisorSignals signals;
  OrphanReaper orphans;
  Children children;
  children.start(std::move(plan), "mpirun", signals.original_mask());
  janitor.watch(children.all().front().pid);
  const Outcome outcome = supervise(children, signals, kMpirunStopGrace);
  orphans.reap(kRankStopGrace);
  const auto& child = children.all().front();
  if (outcome.received_signal != 0) {
    std::fprintf(stderr, "cclab: received %s; stopped mpirun and its ranks\n",
                 signal_text(outcome.received_signal).c_str());
    return 128 + outcome.received_signal;
  }
  // mpirun explains a failed rank itself; add a line only when mpirun itself was killed.
  if (WIFSIGNALED(child.wait_status))
    std::fprintf(stderr, "cclab: mpirun (pid %d) was killed by %s\n", static_cast<int>(child.pid),
                 signal_text(WTERMSIG(child.wait_status)).c_str());
  return checks_failed(child.wait_status) ? kChecksFailedExitStatus : shell_status(child.wait_status);
}

}  // namespace

int launch_local(const std::vector<std::string>& argv, const LocalLaunchOptions& options) {
  if (options.ranks < 1) throw UsageError("the number of ranks (-n) must be at least 1");
  if (argv.empty()) throw UsageError("launch_local needs argv with at least the program name");
  if (options.through_mpirun) return launch_through_mpirun(argv, options);
  // options.timeout_s is not enforced here: every rank gets the same arguments, so it bounds its
  // own rendezvous, and the supervisor stops the others as soon as one gives up.

  const int ranks = options.ranks;
  const std::vector<int> cpus = detail::affinity_cpus();
  const int cores = std::max<int>(1, static_cast<int>(cpus.size()));
  const bool oversubscribed = ranks > cores;
  const bool bind = options.bind && !oversubscribed && !cpus.empty();
  const int cores_per_rank = std::max(1, cores / ranks);
  const bool user_set_omp = std::getenv("OMP_NUM_THREADS") != nullptr;

  // Signals first, so the server thread starts with them blocked (see SupervisorSignals).
  SupervisorSignals signals;
  const std::string token = make_job_token();
  TcpStoreServer server(token);  // 127.0.0.1, ephemeral port: only this host's ranks need it
  const std::string store = server.local_address().to_string();

  Children children;
  for (int rank = 0; rank < ranks; ++rank) {
    ExecPlan plan;
    // /proc/self/exe rather than a path: it is this exact binary even if the file was replaced.
    plan.path = "/proc/self/exe";
    plan.argv = argv;
    std::string binding = "none";
    if (bind) {
      // Rank i gets the i-th contiguous block of our CPUs, like mpirun's --map-by core --bind-to core.
      const std::vector<int> block(cpus.begin() + rank * cores_per_rank, cpus.begin() + (rank + 1) * cores_per_rank);
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int cpu : block) CPU_SET(cpu, &set);
      plan.affinity = set;
      binding = detail::describe_cpus(block);
    }
    std::vector<std::string> overrides = {
        "CCLAB_LOCAL_LAUNCH=1",
        "CCLAB_RANK=" + std::to_string(rank),
        "CCLAB_WORLD_SIZE=" + std::to_string(ranks),
        "CCLAB_STORE=" + store,
        "CCLAB_TOKEN=" + token,
        "CCLAB_BINDING=" + binding,
        "CCLAB_THREADS=" + std::to_string(cores_per_rank),
        std::string("CCLAB_OVERSUBSCRIBED=") + (oversubscribed ? "1" : "0"),
    };
    // OpenMP would otherwise start one thread per CPU in every rank: N ranks x all cores.
    if (!user_set_omp) overrides.push_back("OMP_NUM_THREADS=" + std::to_string(cores_per_rank));
    plan.env = environment_with(overrides);
    children.start(std::move(plan), "rank " + std::to_string(rank), signals.original_mask());
  }

  const Outcome outcome = supervise(children, signals, kRankStopGrace);
  const std::string stopped = outcome.stopped_others ? "; stopped the other ranks" : "";
  if (const auto* failure = outcome.first_failure) {
    const int status = failure->wait_status;
    if (WIFSIGNALED(status)) {
      std::fprintf(stderr, "cclab: %s (pid %d) was killed by %s%s\n", failure->label.c_str(),
                   static_cast<int>(failure->pid), signal_text(WTERMSIG(status)).c_str(), stopped.c_str());
    } else if (WEXITSTATUS(status) == kUsageExitStatus) {
      // The ranks printed the usage error themselves; only say something if we had to stop some.
      if (outcome.stopped_others)
        std::fprintf(stderr, "cclab: %s exited with status 2 (usage error)%s\n", failure->label.c_str(),
                     stopped.c_str());
    } else {
      std::fprintf(stderr, "cclab: %s exited with status %d%s\n", failure->label.c_str(), WEXITSTATUS(status),
                   stopped.c_str());
    }
    return shell_status(status);
  }
  if (outcome.received_signal != 0) {
    std::fprintf(stderr, "cclab: received %s; stopped the ranks\n", signal_text(outcome.received_signal).c_str());
    return 128 + outcome.received_signal;
  }
  return outcome.checks_failed ? kChecksFailedExitStatus : 0;  // rank 0 printed which checks failed
}

}  // namespace cclab
