#pragma once
// The records a run leaves: its loss history, its result and its checkpoint. train/ fills them, io/ writes and
// reads them, sweep/ reports them; this header depends on none of those folders, so their includes form a DAG.
#include <torch/types.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/named_tensors.h"

namespace gradfit::records {

// How a run ended. Text only at the file and console boundary (to_string, parse_run_status).
enum class RunStatus {
  done,           // trained every epoch
  diverged,       // a non-finite loss or gradient
  early_stopped,  // no better validation loss for `patience` epochs
  interrupted,    // stopped by a request (a signal, or a failure elsewhere in the job), checkpointed to continue
  paused,         // sweep.prune: trained to a rung and checkpointed, until the coordinator decides (never in a file)
  pruned,         // sweep.prune: stopped at a rung by the coordinator's decision
};
const char* to_string(RunStatus status);
// The status written as `text`, or nothing when it names none.
std::optional<RunStatus> parse_run_status(const std::string& text);

// What the sweep's one definition of the best run reads of a run.
struct Standing {
  RunStatus status = RunStatus::done;
  double best_val_loss = std::numeric_limits<double>::quiet_NaN();  // NaN without validation
  double final_rel_grad_error = std::numeric_limits<double>::quiet_NaN();
  std::string name;  // the run's name: breaks ties
};
// The best run first, shared by the leaderboard, `eval --run best` and results.h5's /summary column `rank` (which
// scripts/analyze.py reads): among the runs that are done or early_stopped, the lowest best validation loss when
// any run validates, else the lowest final relative gradient error (of the weights saved); then the other runs
// (pruned, diverged, interrupted) by the same measure; NaN last; equal measures by name, so that the order never
// depends on the order runs finished or are listed in. Returns positions in `runs`, and the measure's name in
// `measure`.
std::vector<size_t> best_first(const std::vector<Standing>& runs, std::string* measure = nullptr);

// One row of the loss history, identical on every rank (metrics are reduced globally).
struct EpochRecord {
  int64_t epoch = 0;          // 1-based
  double train_loss = 0;      // mean over the epoch's training samples, each batch with its weights before its step
  double rel_grad_error = 0;  // ||dV/dx - S|| / ||S|| over the training samples, same weights as train_loss
  double val_loss = 0;        // on the held-out samples after the epoch's steps; NaN without validation
  double grad_norm = 0;       // largest norm of the summed weight gradient over the epoch's steps (before clipping)
  double seconds = 0;         // wall time of the epoch
  double lr = 0;              // the learning rate of the epoch's steps
};

// A run's learning-rate schedule between epochs (train/schedule.h): the rate of the next epoch, and the plateau
// schedule's memory. A NaN lr: not recorded (a checkpoint written before schedules existed: the rate constant).
struct ScheduleState {
  double lr = std::numeric_limits<double>::quiet_NaN();
  double plateau_best = std::numeric_limits<double>::infinity();  // the best loss so far
  int64_t plateau_bad_epochs = 0;                                 // epochs since it, as ReduceLROnPlateau counts
};

// The metrics of the weights a run is saved with, from one evaluation pass after its last step (the history's
// rows average over the weights before each step instead). NaN where they do not apply.
struct FinalMetrics {
  double train_loss = std::numeric_limits<double>::quiet_NaN();      // over the training rows
  double rel_grad_error = std::numeric_limits<double>::quiet_NaN();  // over the training rows
  double val_loss = std::numeric_limits<double>::quiet_NaN();        // over the validation rows
};

// A run's saved weights evaluated on the held-out file data.test_path at its end, as `eval` evaluates them. NaN where
// the file lacks what a metric needs.
struct TestMetrics {
  std::string file;  // data.test_path
  int64_t rows = 0;
  double rel_grad_error = std::numeric_limits<double>::quiet_NaN();  // ||dV/dx - S|| / ||S|| over all rows
  double grad_mae = std::numeric_limits<double>::quiet_NaN();        // over all rows and components
  double grad_rmse = std::numeric_limits<double>::quiet_NaN();
  double value_mae = std::numeric_limits<double>::quiet_NaN();  // of V - value after their mean offset (V's constant)
  double value_offset = std::numeric_limits<double>::quiet_NaN();
  // The frames layout: the mean over frames of |V − value| / atoms, as is (NaN otherwise).
  double value_mae_per_atom = std::numeric_limits<double>::quiet_NaN();
};

struct TrainResult {
  std::vector<EpochRecord> history;
  // The weights the run is saved with, by name, on the CPU: with validation those of its best validation epoch
  // (`best_epoch`), else the last ones.
  NamedTensors parameters;
  NamedTensors last_parameters;  // with validation: the weights after the last epoch; empty without
  int64_t best_epoch = 0;        // with validation: the epoch of `parameters` (0: no finite validation loss)
  FinalMetrics final;            // of `parameters`
  RunStatus status = RunStatus::done;
  double wall_seconds = 0;
  double allreduce_seconds = 0;  // of wall_seconds, in the gradient allreduce
  int64_t parameter_count = 0;
  int64_t chunk_rows = 0;  // rows per chunk, as used
  int64_t ensemble = 1;    // runs trained together with this one, itself included (wall_seconds is theirs)
  // L-BFGS: evaluations of the loss and gradient over the whole run (PyTorch's state['func_evals']); else 0.
  int64_t function_evaluations = 0;
};

// Everything needed to continue a run exactly where it stopped, taken at an optimizer-step boundary: continuing
// from it gives the same numbers as never stopping (bitwise on the same device and rank count).
struct Checkpoint {
  size_t member = 0;                 // the run's position in its ensemble (not saved)
  int64_t epoch = 1;                 // the epoch to continue (1-based)
  int64_t next_batch = 0;            // batches of that epoch already done
  std::vector<EpochRecord> history;  // the completed epochs
  NamedTensors parameters;           // by name, on the CPU
  std::string optimizer_state;       // the optimizer's state, serialized by LibTorch
  ScheduleState schedule;            // the learning-rate schedule's, for epoch `epoch`
  double partial_grad_sse = 0;       // sums of the epoch in progress, over its finished batches
  double partial_value_sse = 0;
  double partial_grad_loss = 0;  // train.loss huber: Σ huber(dV/dx − S) (0 for mse, whose loss is partial_grad_sse)
  double partial_max_grad_norm = 0;
  double partial_seconds = 0;
  double best_val_loss = 0;  // the best validation loss so far, and its epoch and weights (with validation)
  int64_t best_epoch = 0;
  NamedTensors best_parameters;
  NamedTensors ema_parameters;    // train.ema_decay: the moving average of the weights; empty without
  int64_t epochs_since_best = 0;  // early stopping
  double wall_seconds = 0;        // spent so far
  double allreduce_seconds = 0;
};

}  // namespace gradfit::records
