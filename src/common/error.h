#pragma once
// One exception hierarchy for the whole tool. Every message is one line that names the file, key or value.
//
// Collective errors are raised identically on every rank (a bad YAML key, a missing dataset): rank 0 reports,
// all ranks exit. Single-rank errors (a NaN in one rank's shard) abort the whole job so nobody waits in a
// collective forever.
#include <stdexcept>
#include <string>

namespace gradfit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, bool collective = false)
      : std::runtime_error(what), collective_(collective) {}
  // True when every rank raises this same error at the same point.
  bool collective() const { return collective_; }

 private:
  bool collective_;
};

// The YAML file or the command line is wrong. Always collective: every rank reads the same file.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& what) : Error(what, /*collective=*/true) {}
};

// The data (a user's HDF5 file or a generated target) is unusable.
class DataError : public Error {
 public:
  using Error::Error;
};

// Reading or writing a file failed.
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace gradfit
