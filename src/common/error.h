#pragma once
// One exception hierarchy for the whole tool. Every message is one line that names the file, key or value.
//
// Whether an error is known to one rank or to all is a matter of type, never of a flag:
// - Error and its subclasses are raised by the rank that found the problem, and concern that rank alone: other
//   ranks may be waiting for it in a collective, so the job ends with MPI_Abort unless the error is shared first.
// - CollectiveError is raised by every rank of a communicator at the same point with the same message: made by
//   parallel::all_or_none (which shares one rank's failure with all) or from numbers every rank agreed on through
//   a collective. Rank 0 reports it; every rank returns normally, and no collective is left waiting.
#include <stdexcept>
#include <string>

namespace gradfit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// The YAML file or the command line is wrong.
class ConfigError : public Error {
 public:
  using Error::Error;
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

// Raised identically on every rank of a communicator (see the top of this file).
class CollectiveError : public Error {
 public:
  using Error::Error;
};

// The one-line message of any exception: LibTorch's c10::Error without its backtrace and C++ frames, "unknown
// error" for an empty one.
std::string message_of(const std::exception& e);

}  // namespace gradfit
