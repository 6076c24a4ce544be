#pragma once
// The whole job behind the command line: read and expand the sweep, train every run on groups of ranks, write
// the results.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "parallel/comm.h"

namespace gradfit {

struct AppOptions {
  std::string config_path;             // the sweep YAML
  std::vector<std::string> overrides;  // --set key=value, applied to the base configuration
  std::string out_dir;                 // results go to OUT_DIR/results.h5; empty: output.dir, else results/<name>
  bool fresh = false;                  // discard what an earlier invocation left in the output folder
  bool dry_run = false;                // print the expanded runs and exit
  std::string progress = "auto";       // runs in flight: live (one rewritten line), lines, or auto
  int threads = 0;                     // intra-op threads per rank; 0: see device::default_thread_count
  double stop_timeout = 20;            // after a stop signal, seconds without word from the other ranks before
                                       // giving up (parallel::StopWatchdog); 0: wait for ever
  std::string command_line;            // recorded in the results
  // Test seams: called on every rank after every epoch; on a group's rank 0 before each run it trains (a failure
  // there is shared with the group: the job fails on the whole group); and on a group's rank 0 when a checkpoint's
  // temporary file is complete but not yet renamed into place. They let tests fail one rank mid-training or one
  // group, and freeze a job at an exact moment to kill it there.
  std::function<void(int64_t epoch)> after_epoch;
  std::function<void(int64_t run_index)> before_run;
  std::function<void()> before_checkpoint_commit;
};

// Collective over `comm`. Returns the process exit code; errors are reported once (rank 0, or the failing rank)
// and never leave other ranks waiting in a collective.
int run_app(const AppOptions& options, const parallel::Comm& comm);

// `gradfit_dist eval RESULTS.h5 DATA.h5`: a saved run's V and dV/dx at a data file's points (see docs/use.md).
struct EvalOptions {
  std::string results_path;  // a results file (OUT/results.h5 or OUT/runs/<id>.h5), optionally PATH#run-name
  std::string data_path;     // x (N×n), optional grad (N×n) and value (N)
  std::string run;           // NAME, ID or "best"; empty: the file's one run
  std::string out_path;      // PRED.h5 (value: N, grad: N×n); empty: print the metrics only
  std::string device = "auto";
  int threads = 0;  // intra-op threads per rank; 0: see device::default_thread_count
};
// Collective over `comm`; returns the exit code, errors reported as run_app reports them.
int run_eval(const EvalOptions& options, const parallel::Comm& comm);

// `gradfit_dist export RESULTS.h5 --out model.pt`: a saved run as a TorchScript module.
struct ExportOptions {
  std::string results_path;
  std::string run;
  std::string out_path;
};
// Collective over `comm` (rank 0 writes, the others wait for its outcome); returns the exit code.
int run_export(const ExportOptions& options, const parallel::Comm& comm);

// Runs `command` (collective over `comm`) and returns its exit code, or 1 after reporting its error: a
// CollectiveError once, by rank 0; any other error by the rank that raised it, which then ends the job.
int run_reporting_errors(const parallel::Comm& comm, const std::function<int()>& command);

}  // namespace gradfit
