// What a job leaves open and behind (docs/design.md, "Listeners" and "Stopping a job"): a one-node job
// listens on no network address, and however a user stops a job with mpirun in its tree, nothing of
// it stays in /dev/shm or the temporary folder.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace cclab {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool have_mpirun() { return std::system("command -v mpirun > /dev/null 2>&1") == 0; }

std::string read_text(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

/// Every process below `root` in the process tree (children, grandchildren, ...).
std::vector<pid_t> descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_text(entry.path().string() + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    pid_t parent = 0;
    if (rest >> state >> parent) children.emplace(parent, static_cast<pid_t>(std::stol(name)));
  }
  std::vector<pid_t> found;
  std::vector<pid_t> frontier = {root};
  while (!frontier.empty()) {
    const pid_t pid = frontier.back();
    frontier.pop_back();
    for (auto [at, end] = children.equal_range(pid); at != end; ++at) {
      found.push_back(at->second);
      frontier.push_back(at->second);
    }
  }
  return found;
}

std::string command_name(pid_t pid) {
  std::string name = read_text("/proc/" + std::to_string(pid) + "/comm");
  if (!name.empty() && name.back() == '\n') name.pop_back();
  return name;
}

/// Whether `pid` runs the cclab binary (ranks exec /proc/self/exe, so their name is "exe").
bool runs_cclab(pid_t pid) {
  std::error_code error;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", error) == fs::canonical(CCLAB_BINARY, error);
}

/// "127.0.0.1" style text of a /proc/net/tcp{,6} address field and whether it is loopback.
bool loopback_address(const std::string& hex_address) {
  const std::string host = hex_address.substr(0, hex_address.find(':'));
  if (host.size() == 8) return (std::stoul(host, nullptr, 16) & 0xff) == 127;  // little-endian word
  if (host == "00000000000000000000000001000000") return true;                 // ::1
  // ::ffff:127.x.y.z
  return host.size() == 32 && host.compare(0, 24, "0000000000000000FFFF0000") == 0 &&
         (std::stoul(host.substr(24), nullptr, 16) & 0xff) == 127;
}

/// A process's network namespace holds no interface but loopback (a private one, as cclab gives mpirun).
bool only_loopback_in_network_of(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::error_code error;
  if (fs::read_symlink(proc + "/ns/net", error) == fs::read_symlink("/proc/self/ns/net", error)) return false;
  std::istringstream devices(read_text(proc + "/net/dev"));
  std::string line;
  for (int skip = 0; skip < 2; ++skip) std::getline(devices, line);
  while (std::getline(devices, line)) {
    const std::string name = line.substr(0, line.find(':'));
    if (name.find_first_not_of(' ') != std::string::npos && name.substr(name.find_first_not_of(' ')) != "lo")
      return false;
  }
  return true;
}

/// Listening TCP sockets of `pid` that another host could reach: "comm pid address" each.
std::vector<std::string> reachable_listeners(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::set<std::string> inodes;
  std::error_code error;
  for (const auto& fd : fs::directory_iterator(proc + "/fd", error)) {
    const std::string target = fs::read_symlink(fd.path(), error).string();
    if (target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::vector<std::string> found;
  if (inodes.empty() || only_loopback_in_network_of(pid)) return found;
  for (const char* table : {"/net/tcp", "/net/tcp6"}) {
    std::istringstream lines(read_text(proc + table));
    std::string line;
    std::getline(lines, line);  // header
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
      if (state == "0A" && inodes.count(inode) && !loopback_address(local))
        found.push_back(command_name(pid) + " " + std::to_string(pid) + " " + local);
    }
  }
  return found;
}

/// A cclab job started as a terminal would: in a session and process group of its own.
class Job {
 public:
  /// `run_as`: a command that runs the rest as another user (e.g. setpriv), or empty.
  Job(const std::string& arguments, const std::string& tmpdir, const std::string& log,
      const std::vector<std::string>& run_as = {}) {
    std::vector<std::string> env;
    for (char** entry = environ; *entry != nullptr; ++entry) {
      const std::string text = *entry;
      if (text.rfind("CCLAB_", 0) != 0 && text.rfind("OMPI_", 0) != 0 && text.rfind("TMPDIR=", 0) != 0)
        env.push_back(text);
    }
    env.push_back("TMPDIR=" + tmpdir);
    env.push_back("OMPI_ALLOW_RUN_AS_ROOT=1");
    env.push_back("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1");
    std::vector<char*> envp;
    for (auto& text : env) envp.push_back(text.data());
    envp.push_back(nullptr);
    std::vector<std::string> words = run_as;
    words.push_back(CCLAB_BINARY);
    std::istringstream split(arguments);
    for (std::string word; split >> word;) words.push_back(word);
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, &attributes, argv.data(), envp.data()), 0);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Job() {
    if (pid_ > 0 && !finished_) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }

  /// Waits until `ranks` processes of the cclab binary run below the supervisor; false after `seconds`.
  bool wait_for_ranks(size_t ranks, double seconds) const {
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < until) {
      size_t found = 0;
      for (pid_t pid : descendants(pid_))
        if (runs_cclab(pid)) ++found;
      if (found >= ranks) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  /// Exit status as a shell reports it (128 + signal); -1 when it ran past `seconds` (then killed).
  int wait(double seconds) {
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > until) {
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        finished_ = true;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    finished_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  bool finished_ = false;
};

/// A TMPDIR of the test's own, and a log beside it; both removed however the test ends.
struct Scratch {
  explicit Scratch(const std::string& name) {
    std::string pattern = (fs::temp_directory_path() / ("cclab-hygiene-" + name + "-XXXXXX")).string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    folder = pattern;
    log = pattern + ".log";
  }
  ~Scratch() {
    std::error_code error;
    fs::remove_all(folder, error);
    fs::remove(log, error);
  }
  fs::path folder;
  std::string log;
};

std::vector<std::string> entries(const fs::path& folder) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(folder, error)) names.push_back(entry.path().filename());
  return names;
}

/// Runs `arguments` as a one-node job and looks at its processes' listeners for a while.
void expect_no_reachable_listener(const std::string& arguments, size_t ranks,
                                  const std::vector<std::string>& run_as = {}) {
  const Scratch scratch("listen");
  const fs::path& tmpdir = scratch.folder;
  const std::string& log = scratch.log;
  if (!run_as.empty()) fs::permissions(tmpdir, fs::perms::all);  // the other user's TMPDIR too
  Job job(arguments, tmpdir, log, run_as);
  ASSERT_TRUE(job.wait_for_ranks(ranks, 30)) << read_text(log);
  std::set<std::string> listeners;
  size_t looked_at = 0;
  // Transports open their listeners while the ranks wire up: look until the job has run a while.
  for (int sample = 0; sample < 20; ++sample) {
    for (pid_t pid : descendants(job.pid())) {
      ++looked_at;
      for (const auto& listener : reachable_listeners(pid)) listeners.insert(listener);
    }
    for (const auto& listener : reachable_listeners(job.pid())) listeners.insert(listener);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  ::kill(-job.pid(), SIGTERM);
  EXPECT_NE(job.wait(30), -1) << read_text(log);
  EXPECT_GT(looked_at, ranks);
  std::string found;
  for (const auto& listener : listeners) found += listener + "\n";
  EXPECT_TRUE(listeners.empty()) << "listening on a network address:\n" << found << read_text(log);
  EXPECT_TRUE(entries(tmpdir).empty()) << "left in TMPDIR: " << entries(tmpdir).front();
}

TEST(Listeners, OneNodeJobOfOurRanksListensOnlyOnLoopback) {
  expect_no_reachable_listener("bench allreduce -n 2 --impl ring -e 64M --iters 50", 2);
}

TEST(Listeners, OneNodeJobThroughMpirunListensOnNoNetworkAddress) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun is not installed";
  expect_no_reachable_listener("bench allreduce -n 2 --impl ring,mpi -e 64M --iters 50", 2);
}

// Without the right to make a network namespace, cclab gives mpirun one inside a user namespace.
TEST(Listeners, OneNodeJobThroughMpirunOfAnUnprivilegedUserListensOnNoNetworkAddress) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun is not installed";
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to run the job as the user nobody";
  const std::vector<std::string> as_nobody = {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup",
                                              "--clear-groups", "--"};
  if (std::system("/usr/bin/setpriv --reuid=nobody --regid=nogroup --clear-groups -- "
                  "unshare --user --map-current-user --net true > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "this kernel lets no unprivileged user make a user namespace (or setpriv/unshare is missing)";
  std::error_code error;
  for (fs::path folder = fs::canonical(CCLAB_BINARY, error).parent_path(); folder != folder.root_path();
       folder = folder.parent_path())
    if ((fs::status(folder, error).permissions() & fs::perms::others_exec) == fs::perms::none)
      GTEST_SKIP() << "the user nobody cannot reach the cclab binary (" << folder << " is closed to others)";
  expect_no_reachable_listener("bench allreduce -n 2 --impl ring,mpi -e 64M --iters 50", 2, as_nobody);
}

/// The environment variable `name` of process `pid`, or "".
std::string environment_of(pid_t pid, const std::string& name) {
  const std::string environment = read_text("/proc/" + std::to_string(pid) + "/environ");
  std::istringstream entries(environment);
  for (std::string entry; std::getline(entries, entry, '\0');)
    if (entry.rfind(name + "=", 0) == 0) return entry.substr(name.size() + 1);
  return {};
}

/// How a user stops a job, and what the test sends for it.
struct Stop {
  const char* what;
  int signal;
  enum Target { whole_group, supervisor, mpirun } target;
};

TEST(StoppingAJob, NothingOfAnMpirunJobStaysInDevShmOrTmp) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun is not installed";
  const Stop stops[] = {
      {"Ctrl-C in the terminal", SIGINT, Stop::whole_group},
      {"Ctrl-C in the terminal again", SIGINT, Stop::whole_group},
      {"the terminal closed", SIGHUP, Stop::whole_group},
      {"kill of the supervisor", SIGTERM, Stop::supervisor},
      {"mpirun killed", SIGKILL, Stop::mpirun},
      {"the supervisor killed with SIGKILL", SIGKILL, Stop::supervisor},
  };
  for (const Stop& stop : stops) {
    SCOPED_TRACE(stop.what);
    const Scratch scratch("stop");
    const fs::path& tmpdir = scratch.folder;
    const std::string& log = scratch.log;
    Job job("bench allreduce -n 2 --impl ring,mpi -e 64M --iters 50", tmpdir, log);
    ASSERT_TRUE(job.wait_for_ranks(2, 30)) << read_text(log);
    pid_t mpirun = -1;
    std::string job_id;
    for (pid_t pid : descendants(job.pid())) {
      if (command_name(pid) == "mpirun") mpirun = pid;
      if (runs_cclab(pid) && job_id.empty()) job_id = environment_of(pid, "OMPI_MCA_ess_base_jobid");
    }
    ASSERT_GT(mpirun, 0);
    // Stop it once Open MPI has made its segments: then there is something to leave behind.
    const std::string job_folders = "cclab-" + std::to_string(job.pid()) + "-";
    const auto until = Clock::now() + std::chrono::seconds(20);
    bool segments = false;
    while (!segments && Clock::now() < until) {
      for (const auto& name : entries("/dev/shm"))
        if (name.rfind(job_folders, 0) == 0 && !entries(fs::path("/dev/shm") / name).empty()) segments = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(segments) << "no Open MPI segments in a job folder in /dev/shm\n" << read_text(log);
    const pid_t target = stop.target == Stop::whole_group  ? -job.pid()
                         : stop.target == Stop::supervisor ? job.pid()
                                                           : mpirun;
    ASSERT_EQ(::kill(target, stop.signal), 0);
    const int status = job.wait(30);
    EXPECT_NE(status, -1) << read_text(log);
    EXPECT_NE(status, 0) << read_text(log);

    EXPECT_TRUE(descendants(job.pid()).empty());
    char hex_job_id[32] = "";
    if (!job_id.empty()) std::snprintf(hex_job_id, sizeof hex_job_id, ".%lx.", std::stoul(job_id));
    const auto left_behind = [&] {
      std::vector<std::string> left;
      for (const auto& name : entries(tmpdir)) left.push_back("TMPDIR: " + name);
      for (const auto& name : entries("/dev/shm"))
        if (name.rfind(job_folders, 0) == 0 || (*hex_job_id && name.find(hex_job_id) != std::string::npos))
          left.push_back("/dev/shm: " + name);
      return left;
    };
    // A supervisor killed with SIGKILL cleans up through its janitor, which first waits for mpirun.
    const auto clean_by = Clock::now() + std::chrono::seconds(stop.signal == SIGKILL ? 20 : 0);
    while (!left_behind().empty() && Clock::now() < clean_by)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const auto& left : left_behind()) ADD_FAILURE() << "left in " << left;
  }
}

}  // namespace
}  // namespace cclab
