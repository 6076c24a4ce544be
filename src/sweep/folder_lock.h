#pragma once
// The lock of an output folder, OUT/.lock: one invocation at a time trains into a folder. Created atomically (a
// complete temporary hard-linked to the name) by world rank 0, before anything in the folder is modified, and
// removed when the FolderLock is destroyed (normal end, error, stop by a signal). A lock whose process is gone
// (same host, kill(pid, 0) fails with ESRCH) is stale and taken over, with a note on stdout; a live one, or one
// from another host, is an IoError naming the process holding it.
#include <filesystem>
#include <string>

namespace gradfit::sweep {

class FolderLock {
 public:
  FolderLock() = default;  // holds nothing (the ranks other than world rank 0)
  // Takes the lock of `dir`, creating `dir` if needed. Throws IoError when another job holds it.
  static FolderLock take(const std::filesystem::path& dir);
  FolderLock(FolderLock&& other) noexcept;
  FolderLock& operator=(FolderLock&& other) noexcept;
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  // Removes the lock; when the folder holds no HDF5 file, also the folders this invocation created (the output
  // folder and its parents that were not there), else its empty runs/ and checkpoints/.
  ~FolderLock();

  bool held() const { return !dir_.empty(); }
  // Writes OUT/outcome atomically: "complete", "interrupted" or "failed: <message>". Never throws.
  void write_outcome(const std::string& outcome) const;
  // For a process about to end without unwinding (parallel::StopWatchdog): writes the outcome and removes the lock
  // file, from any thread. Never throws.
  void abandon(const std::string& outcome) const noexcept;

 private:
  void release() noexcept;

  std::filesystem::path dir_;      // empty when nothing is held
  std::filesystem::path created_;  // the outermost folder take() created (absolute), or empty
};

// Writes `dir`/outcome atomically (see FolderLock::write_outcome), from any rank: the rank that fails alone, before
// MPI_Abort ends the job and world rank 0 with it. Never throws.
void write_outcome(const std::filesystem::path& dir, const std::string& outcome) noexcept;

// The path of `dir`'s lock file.
std::filesystem::path lock_file(const std::filesystem::path& dir);

}  // namespace gradfit::sweep
