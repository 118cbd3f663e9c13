// Folders that belong to one job (Open MPI's session files and shared-memory segments, when cclab
// starts mpirun), removed however the job ends: by their owner's destructor, or, when the
// supervisor itself is killed with SIGKILL and no code of it runs again, by a janitor process.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "bootstrap/unique_fd.h"

namespace cclab {

/// A folder made empty for one job (`parent`/cclab-<pid>-XXXXXX, by mkdtemp) and removed with
/// everything in it on destruction.
class JobFolder {
 public:
  /// An empty path() when the folder cannot be made (errno says why).
  explicit JobFolder(const std::string& parent);
  ~JobFolder();
  JobFolder(const JobFolder&) = delete;
  JobFolder& operator=(const JobFolder&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Removes `folders` if this process dies without saying it is done with them.
///
/// The janitor is a process of its own session (a terminal's signals miss it), reparented away from
/// us (so our reaping of orphans never waits for it), that blocks reading a pipe only we write to.
/// Our destructor writes "done" and it exits. End of file without "done" means we died: it then
/// waits, for a bounded time, until the process given to watch() is gone (mpirun, which gets SIGTERM
/// when we die and cleans up its own files first) and removes the folders.
///
/// Forks: construct it before this process starts any other thread.
class FolderJanitor {
 public:
  explicit FolderJanitor(std::vector<std::string> folders);
  ~FolderJanitor();
  FolderJanitor(const FolderJanitor&) = delete;
  FolderJanitor& operator=(const FolderJanitor&) = delete;

  /// The process whose end the janitor awaits before removing anything.
  void watch(pid_t pid);

 private:
  UniqueFd to_janitor_;
};

}  // namespace cclab
