#pragma once
// A trained run read back from a results file: its architecture and final weights, to evaluate, export or
// continue from (see docs/use.md).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/mlp.h"
#include "model/standardization.h"
#include "records/records.h"

namespace gradfit::io {

struct SavedRun {
  std::string file;                 // the HDF5 file it came from
  std::string name;                 // its group under /runs
  std::string id;                   // its `id` attribute
  std::string status;               // done | diverged | early_stopped | interrupted
  double final_rel_grad_error = 0;  // NaN when it ran no epoch
  config::ModelSpec model;          // widths, activation, dtype (from the run's attributes)
  int64_t input_dim = 0;            // n (attribute `dim`)
  NamedTensors parameters;          // /runs/<name>/model/<param>, in the model's dtype, on the CPU, in the order
                                    // of Mlp::parameters(): layers.0.weight (width × n), layers.0.bias, ...
  // data.standardize: the transform the weights were trained under (group standardization/); inactive without.
  // The weights compute Ṽ of standardized inputs; model::user_values / user_gradients give V and dV/dx.
  model::Standardization standardization;
  std::vector<int64_t> numbers;  // the training data's atomic numbers (attribute `numbers`), empty without
  // How the CPU treated subnormal floats in training (attribute `denormals`; files from before it existed: keep).
  config::Denormals denormals = config::Denormals::keep;
};

// The rule of `--run best` is the leaderboard's (records::best_first): among the runs whose status is done or
// early_stopped, the lowest best_val_loss when the runs validate, else the lowest final_rel_grad_error; ties go to
// the first in name order.
inline constexpr const char* kBestRun = "best";

// Reads one run of a results file (OUT/results.h5 or OUT/runs/<id>.h5). `path` may end in "#<run name>", which
// then selects the run; else `selector` does: a run's group name under /runs, its `id`, or "best" (kBestRun).
// Both empty: the file must hold exactly one run. Throws IoError naming the file and what is wrong: no such file,
// no /runs, no such run (listing the names there), several runs and no selector, a missing attribute or weight,
// weights whose shapes do not match the architecture. One rank; reads only attributes and weights.
SavedRun read_saved_run(const std::string& path, const std::string& selector);

// A run of model.features atom_centered as the model of other atoms, atomic numbers `numbers` (a structure of the
// trained elements: another molecule, or the same atoms in another order): its networks and weights, n = 3 per
// atom, and the atoms' energy Σ_i b_{Z_i} of its element energies. Throws DataError naming `where` (the data file)
// and the first atom of an element the model has no network for. One rank.
SavedRun for_atoms(const SavedRun& run, const std::vector<int64_t>& numbers, const std::string& where);

// The MLP of a saved run with its weights, in the run's dtype, on the CPU.
model::Mlp make_model(const SavedRun& run);

}  // namespace gradfit::io
