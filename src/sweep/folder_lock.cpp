#include "sweep/folder_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>

#include "common/error.h"
#include "parallel/comm.h"

namespace gradfit::sweep {
namespace {

namespace fs = std::filesystem;

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Creates `path` holding `text` only if it does not exist (O_EXCL): false if it does.
bool create_exclusive(const fs::path& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw IoError("cannot create the lock " + path.string() + ": " + std::strerror(errno));
  }
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const bool closed = ::close(fd) == 0;
  if (!written || !closed) {
    ::unlink(path.c_str());
    throw IoError("cannot write the lock " + path.string());
  }
  return true;
}

// The lock's key=value lines (host, pid, started); empty while it is being written or when unreadable.
std::map<std::string, std::string> read_lock(const fs::path& path) {
  std::map<std::string, std::string> keys;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) keys[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return keys;
}

// Whether process `pid` of this host has ended: no such process, or a zombie that nobody reaped (a rank killed
// under a container whose first process does not reap orphans still answers kill(pid, 0)).
bool gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');  // "pid (command) state ..."
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z';
}

// A lock of a process that no longer exists on this host.
bool is_stale(const std::map<std::string, std::string>& holder) {
  const auto host = holder.find("host"), pid = holder.find("pid");
  if (host == holder.end() || pid == holder.end() || host->second != parallel::host_name()) return false;
  char* end = nullptr;
  const long value = std::strtol(pid->second.c_str(), &end, 10);
  if (value <= 0 || *end != '\0') return false;
  return gone(static_cast<pid_t>(value));
}

IoError in_use(const fs::path& dir, const std::map<std::string, std::string>& holder) {
  const auto lock = lock_file(dir).string();
  if (!holder.count("host") || !holder.count("pid"))
    return IoError(dir.string() + " is in use: its lock " + lock +
                   " is being written or unreadable; remove it if no gradfit_dist job uses the folder");
  const auto started = holder.count("started") ? holder.at("started") : std::string("an unknown time");
  return IoError(dir.string() + " is in use by gradfit_dist pid " + holder.at("pid") + " on host " + holder.at("host") +
                 " since " + started + "; wait for it to finish, or remove " + lock + " if that job is gone");
}

bool holds_hdf5_file(const fs::path& dir) {
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
    if (it->path().extension() == ".h5") return true;
  return static_cast<bool>(error);  // when in doubt, keep the folder
}

// `dir` as an absolute path without a trailing separator, so that its parent_path() is its parent folder.
fs::path absolute_folder(const fs::path& dir) {
  std::error_code error;
  fs::path p = fs::absolute(dir, error).lexically_normal();
  return p.has_filename() ? p : p.parent_path();
}

// The outermost folder of `dir` that does not exist yet (`dir` itself, or one of its parents); empty when `dir`
// exists.
fs::path first_missing(const fs::path& dir) {
  std::error_code error;
  fs::path missing;
  for (fs::path p = absolute_folder(dir); !p.empty() && !fs::exists(p, error); p = p.parent_path()) {
    missing = p;
    if (p == p.parent_path()) break;
  }
  return missing;
}

}  // namespace

fs::path lock_file(const fs::path& dir) {
  return dir / ".lock";
}

FolderLock FolderLock::take(const fs::path& dir) {
  FolderLock lock;
  std::error_code error;
  lock.created_ = first_missing(dir);
  fs::create_directories(dir, error);
  if (error) throw IoError("cannot create output directory '" + dir.string() + "': " + error.message());
  const std::string text =
      "host=" + parallel::host_name() + "\npid=" + std::to_string(::getpid()) + "\nstarted=" + utc_now() + "\n";
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (create_exclusive(lock_file(dir), text)) {
      lock.dir_ = dir;
      fs::remove(dir / "outcome", error);  // an earlier invocation's
      return lock;
    }
    const auto holder = read_lock(lock_file(dir));
    if (!is_stale(holder)) throw in_use(dir, holder);
    std::printf("taking over the stale lock %s of gradfit_dist pid %s on host %s (that process is gone)\n",
                lock_file(dir).c_str(), holder.at("pid").c_str(), holder.at("host").c_str());
    std::fflush(stdout);
    fs::remove(lock_file(dir), error);
  }
  throw in_use(dir, read_lock(lock_file(dir)));
}

FolderLock::FolderLock(FolderLock&& other) noexcept : dir_(std::move(other.dir_)), created_(std::move(other.created_)) {
  other.dir_.clear();
}

FolderLock& FolderLock::operator=(FolderLock&& other) noexcept {
  if (this != &other) {
    release();
    dir_ = std::move(other.dir_);
    created_ = std::move(other.created_);
    other.dir_.clear();
  }
  return *this;
}

FolderLock::~FolderLock() {
  release();
}

void FolderLock::release() noexcept {
  if (dir_.empty()) return;
  std::error_code error;
  fs::remove(lock_file(dir_), error);
  // A job that failed before any run had results leaves nothing behind: not the folders it created (the output
  // folder, and its parents that were not there), nor empty runs/ and checkpoints/ in a folder that was there (its
  // outcome stays).
  if (!holds_hdf5_file(dir_)) {
    if (!created_.empty()) {
      fs::remove_all(dir_, error);
      const size_t outermost = created_.native().size();
      for (fs::path p = absolute_folder(dir_).parent_path(); p.native().size() >= outermost; p = p.parent_path())
        if (!fs::remove(p, error)) break;  // only when empty
    } else {
      fs::remove(dir_ / "runs", error);  // only when empty
      fs::remove(dir_ / "checkpoints", error);
    }
  }
  dir_.clear();
}

void FolderLock::write_outcome(const std::string& outcome) const {
  if (!dir_.empty()) sweep::write_outcome(dir_, outcome);
}

void FolderLock::abandon(const std::string& outcome) const noexcept {
  if (dir_.empty()) return;
  sweep::write_outcome(dir_, outcome);
  std::error_code error;
  fs::remove(lock_file(dir_), error);
}

void write_outcome(const fs::path& dir, const std::string& outcome) noexcept {
  const fs::path path = dir / "outcome";
  const fs::path temporary = dir / ("outcome.tmp-" + std::to_string(::getpid()));
  {
    std::ofstream out(temporary);
    out << outcome << "\n";
    out.flush();
    if (!out) return;
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) fs::remove(temporary, error);
}

}  // namespace gradfit::sweep
