#pragma once
// The results file of a run (see docs/results.md, "HDF5 results"). Written whole to a temporary file beside the target
// and renamed over it, so a crash at any instant leaves either no file or a complete one.
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "io/h5.h"
#include "model/standardization.h"
#include "records/records.h"

namespace gradfit::io {

// Where and how the run happened, recorded as attributes.
struct RunProvenance {
  std::string command_line;
  int ranks = 1;  // that trained this run together
  int threads_per_rank = 1;
  std::string device = "cpu";
  std::string denormals = "flush";  // the top-level key `denormals`
  std::string hosts;                // the hosts of the ranks that trained it, comma-separated
  std::string data_description;
  int64_t total_rows = 0;                  // N
  int64_t dim = 0;                         // n
  model::Standardization standardization;  // data.standardize: the transform the model was trained under
  bool weighted = false;                   // the data file's `weight` dataset weighed the rows
  // sweep.prune: the last rung the run reached (0: the first; the number of rungs: it trained every epoch), -1
  // without pruning or before the first rung; and the epoch it was pruned at (0: not pruned).
  int64_t rung = -1;
  int64_t pruned_at_epoch = 0;
  std::vector<int64_t> numbers;              // the data file's atomic numbers (attribute `numbers`), or none
  std::optional<records::TestMetrics> test;  // data.test_path: the saved weights on the test file
};

// Writes each tensor (float32 or float64, on the CPU) as a dataset of its shape and dtype, named by the module name.
void write_parameters(const Location& group, const std::vector<std::pair<std::string, torch::Tensor>>& parameters);
// Reads back one tensor that write_parameters wrote (dataset `name` of `group`), as float64 of its shape.
torch::Tensor read_parameter(const Location& group, const std::string& name);

// Writes the history columns (epoch, train_loss, rel_grad_error, val_loss, grad_norm, epoch_seconds) into `group`.
void write_history(const Location& group, const std::vector<records::EpochRecord>& history);

// Writes a results file holding the one run `run` to `path`, atomically (one rank calls it). Throws IoError.
void write_results(const std::string& path, const config::Config& config, const config::RunSpec& run,
                   const RunProvenance& context, const records::TrainResult& result);

// Writes `path` atomically with every /runs/<name> group of the results files `run_files` copied in.
void merge_results(const std::string& path, const config::Config& config, const std::string& command_line,
                   const std::vector<std::string>& run_files);

}  // namespace gradfit::io
