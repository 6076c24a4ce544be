#pragma once
// The results file of a run (see README, "HDF5 results"). Written whole to a temporary file beside the target and
// renamed over it, so a crash at any instant leaves either no file or a complete one.
#include <string>

#include "config/config.h"
#include "train/trainer.h"

namespace gradfit::io {

// Where and how the run happened, recorded as attributes.
struct RunContext {
  std::string command_line;
  int ranks = 1;
  int threads_per_rank = 1;
  std::string device = "cpu";
  std::string data_description;
  int64_t total_rows = 0;  // N
  int64_t dim = 0;         // n
};

// Writes `path` atomically (single rank: call on rank 0 only). Throws IoError.
void write_results(const std::string& path, const config::Config& config, const RunContext& context,
                   const train::TrainResult& result);

}  // namespace gradfit::io
