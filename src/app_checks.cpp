#include "app_checks.h"

#include <algorithm>
#include <set>
#include <string>

#include "common/elements.h"
#include "common/error.h"
#include "model/mlp.h"

namespace gradfit {
namespace {

using data::FileLayouts;
using data::layout_of;

// data.test_path against the data the run trains on: the same n (and atoms, where both files name them).
void check_test_file(const config::Config& config, const config::RunSpec& run, FileLayouts& layouts) {
  const auto& test = [&]() -> const data::FileLayout& {
    try {
      return layout_of(layouts, run.data.test_path);
    } catch (const DataError& e) {
      throw ConfigError(config.path + ": key 'data.test_path': " + e.what());
    }
  }();
  const bool file = run.data.target == config::Target::file;
  const bool frames = file && layout_of(layouts, run.data.path).frames;
  if (frames && !test.frames)
    throw ConfigError(config.path + ": key 'data.test_path': " + run.data.test_path +
                      " is not of the frames layout, "
                      "but the run trains on frames of " +
                      run.data.path +
                      ": import the test frames as the training ones (ase_import.py --layout frames) (run " + run.name +
                      ")");
  if (test.frames) {
    if (run.model.features != config::FeatureKind::atom_centered)
      throw ConfigError(config.path + ": key 'data.test_path': " + run.data.test_path +
                        " holds frames of any atoms or periodic cells (the frames layout), which only a model of "
                        "features atom_centered takes (run " +
                        run.name + ")");
    return;  // any structures of the model's elements: checked with the rows (check_test_rows)
  }
  const int64_t dim = file ? layout_of(layouts, run.data.path).dim : run.data.dim;
  if (test.dim != dim)
    throw ConfigError(config.path + ": key 'data.test_path': " + run.data.test_path +
                      " has n = " + std::to_string(test.dim) + " columns, but the training data " +
                      (file ? run.data.path : "(data.target)") + " has n = " + std::to_string(dim) + " (run " +
                      run.name + ")");
  const auto& numbers = file ? layout_of(layouts, run.data.path).numbers : test.numbers;
  if (!test.numbers.empty() && !numbers.empty() && test.numbers != numbers)
    throw ConfigError(config.path + ": key 'data.test_path': the atoms of " + run.data.test_path +
                      " (attribute 'numbers') differ from those of " + run.data.path + " (run " + run.name + ")");
}

// A run on a file of the frames layout (frames of any atoms, periodic cells): what trains on it yet.
void check_frames_run(const config::Config& config, const config::RunSpec& run) {
  const auto fail = [&](const std::string& key, const std::string& what) {
    throw ConfigError(config.path + ": key '" + key + "': " + run.data.path +
                      " holds frames of any atoms or periodic cells (the frames layout), " + what + " (run " +
                      run.name + ")");
  };
  if (run.model.features != config::FeatureKind::atom_centered)
    fail("model.features",
         "which trains with atom_centered only, not " + std::string(config::to_string(run.model.features)));
  if (run.train.engine != config::Engine::analytic) fail("train.engine", "which trains on the analytic engine only");
  if (run.data.standardize) fail("data.standardize", "which trains unstandardized (the element energies are fitted)");
  if (run.optimizer.name == config::Optimizer::lbfgs) fail("optimizer.name", "which does not train with lbfgs yet");
}

}  // namespace

// Checks what the YAML alone cannot: runs on a user's file (and test files) against the files' shapes (read, not
// the data). Returns the shapes. One rank.
FileLayouts check_against_files(const config::Config& config) {
  FileLayouts layouts;
  for (const auto& run : config.runs) {
    const bool file = run.data.target == config::Target::file;
    if (file && layout_of(layouts, run.data.path).frames) check_frames_run(config, run);
    if (!run.data.test_path.empty()) check_test_file(config, run, layouts);
    if (!file) continue;
    const auto& layout = layout_of(layouts, run.data.path);
    if (layout.rows > config::kMaxSamples || layout.dim > config::kMaxDim)
      throw ConfigError(run.data.path + ": dataset 'x' is " + std::to_string(layout.rows) + " × " +
                        std::to_string(layout.dim) + ": a run takes at most " + std::to_string(config::kMaxSamples) +
                        " rows and " + std::to_string(config::kMaxDim) + " columns (run " + run.name + ")");
    if (run.train.batch_size > layout.rows)
      throw ConfigError(config.path + ": key 'train.batch_size': " + std::to_string(run.train.batch_size) +
                        " is larger than the " + std::to_string(layout.rows) + " samples of " + run.data.path +
                        " (run " + run.name + ")");
    const std::string features_error = layout.frames ? "" : config::features_dim_error(run.model, layout.dim);
    if (!features_error.empty())
      throw ConfigError(config.path + ": key 'model." + config::features_dim_key(run.model) + "': " + features_error +
                        " in " + run.data.path + " (run " + run.name + ")");
    if (config::features_need_elements(run.model) && layout.numbers.empty())
      throw ConfigError(config.path + ": key 'model.features': " + config::to_string(run.model.features) +
                        " needs the atoms' elements, but " + run.data.path +
                        " has no attribute 'numbers' (scripts/ase_import.py writes it) (run " + run.name + ")");
    if (run.train.value_weight > 0 && !layout.has_values)
      throw ConfigError(config.path + ": key 'train.value_weight' is " + std::to_string(run.train.value_weight) +
                        " but " + run.data.path + " has no dataset 'value' (run " + run.name + ")");
    for (const auto& [number, widths] : run.model.element_widths)
      if (std::find(layout.numbers.begin(), layout.numbers.end(), number) == layout.numbers.end())
        throw ConfigError(config.path + ": key 'model.element_widths': " + element_symbol(number) +
                          " is not an element of the atoms of " + run.data.path + " (run " + run.name + ")");
  }
  return layouts;
}

void attach_elements(config::Config& config) {
  FileLayouts layouts;
  for (auto& run : config.runs)
    if (config::features_need_elements(run.model) && run.data.target == config::Target::file)
      run.model.numbers = layout_of(layouts, run.data.path).numbers;
}

// Every data.test_path's rows, checked as the training data are (NaN or Inf, the coordinates of a file with atoms,
// two atoms at one place for features that need distinct atoms), before anything is trained or written: a bad test
// file would otherwise be found after training, or give NaN test metrics. Each file once per dtype and kind of
// check. Collective over `world`; errors are CollectiveErrors naming the file and row.
void check_test_rows(const config::Config& config, const parallel::Comm& world) {
  std::set<std::string> checked;
  for (const auto& run : config.runs) {
    if (run.data.test_path.empty()) continue;
    const std::string key =
        run.data.test_path + "\n" + config::to_string(run.model.dtype) + "\n" + config::to_string(run.model.features);
    if (!checked.insert(key).second) continue;
    try {
      data::load_points_for(run.model, run.data.test_path, world);
    } catch (const CollectiveError& e) {
      throw CollectiveError(config.path + ": key 'data.test_path': " + e.what() + " (run " + run.name + ")");
    }
  }
}

}  // namespace gradfit
