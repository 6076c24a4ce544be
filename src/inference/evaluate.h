#pragma once
// A trained model evaluated at a data file's points, shard by shard over the ranks: V and dV/dx a chunk of rows at
// a time, the error metrics against the file's samples summed over the ranks, and the predictions written to one
// HDF5 file by every rank in turn (see docs/use.md, "Evaluate").
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "io/saved_run.h"
#include "model/mlp.h"
#include "model/standardization.h"
#include "parallel/comm.h"

namespace gradfit::inference {

// Over all rows of the data (every rank holds the same numbers). NaN where the data lack what a metric needs.
struct EvalMetrics {
  int64_t rows = 0;                 // N
  std::vector<double> grad_mae;     // per component of dV/dx (n), empty without `grad`
  std::vector<double> grad_rmse;    // per component
  double rel_grad_error = NAN;      // ||dV/dx - S|| / ||S|| over all rows and components
  double max_abs_grad_error = NAN;  // max over rows and components of |dV/dx - S|
  double value_mae = NAN;           // of V - value, as is
  double value_rmse = NAN;
  double value_offset = NAN;       // mean of V - value: the constant V is free to differ by
  double value_mae_centred = NAN;  // of V - value - value_offset
  double value_rmse_centred = NAN;
  // The frames layout: the atoms, over which the gradient metrics are taken (rows: the frames), and the MAE of
  // (V − value) / atoms per frame, as is.
  int64_t atoms = 0;
  double value_mae_per_atom = NAN;
};

// This rank's predictions: values (shard.count), grads (shard.count × n), in the model's dtype, on the CPU; for the
// frames layout values per frame, grads per atom (atoms × 3) and virials per frame (frames × 9, row-major,
// W_ab = ∂V/∂ε_ab under the strain x → (1 + ε) x of atoms and cell), in float64.
struct Prediction {
  torch::Tensor values;
  torch::Tensor grads;
  torch::Tensor virials;  // the frames layout only
  EvalMetrics metrics;
};

// Collective over `comm`. Evaluates `model` (on `device`) at the rows of this rank's shard of `data` (on the CPU,
// in the model's dtype), in the blocks of `chunk_rows` rows of the global row order (so the numbers are bit for bit
// the same for any rank count); dV/dx by autograd without create_graph, so memory beyond the shard is one chunk's
// activations. Consumes data.grad_samples: once a chunk's errors are summed its rows hold the
// predicted gradient (so the predictions cost one n-column shard less). `standardization`: the transform the model
// was trained under (data.standardize; inactive: none): data and predictions are in the user's units, the model
// sees x̃ and its Ṽ, ∂Ṽ/∂x̃ are brought back (model/standardization.h).
Prediction evaluate(model::Mlp& model, const model::Standardization& standardization, data::Dataset& data,
                    torch::Device device, int64_t chunk_rows, const parallel::Comm& comm);

// The one evaluation of a trained model, for `eval` and for data.test_path after training: the saved `run` at
// `points` (data::load_points_for's) on `device`, in the chunks eval uses there. Consumes points.grad_samples as
// evaluate does. On the frames layout evaluate_frames's (on the CPU). Collective over `comm`.
Prediction evaluate_run(const io::SavedRun& run, data::Dataset& points, torch::Device device,
                        const parallel::Comm& comm);

// The same on the frames layout (points.is_frames()): the saved atom_centered `run` on each frame of this rank's
// shard, its energy with the element energies, dV/dx and virial by the code that trains on frames
// (model/analytic_frames.h), on the CPU; the metrics over all ranks' frames and atoms. Collective over `comm`.
Prediction evaluate_frames(const io::SavedRun& run, const data::Dataset& points, const parallel::Comm& comm);

// What PRED.h5 records about where its numbers come from (attributes).
struct PredictionSource {
  std::string results_file, run_name, run_id, data_file;
};

// Collective over `comm`. Writes `path` with datasets value (N) and grad (N×n) in the model's dtype (for the frames
// layout value (N frames), grad (atoms × 3) and virial (N × 9), float64), rows in the data file's order, without
// gathering rows on one rank: rank 0 creates a temporary file of full-size datasets, the ranks write their rows into it
// in turn (rank r after rank r-1), and rank 0 renames it over `path`. Every failure is a CollectiveError on every rank,
// and leaves no file behind.
void write_predictions(const std::string& path, const Prediction& prediction, const data::Dataset& data,
                       const PredictionSource& source, const parallel::Comm& comm);

// The metrics as the lines eval prints.
std::string metrics_text(const EvalMetrics& metrics);

}  // namespace gradfit::inference
