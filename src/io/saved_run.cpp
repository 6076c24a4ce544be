#include "io/saved_run.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <type_traits>
#include <vector>

#include "common/error.h"
#include "io/h5.h"
#include "io/results.h"
#include "model/features_atom_centered.h"

namespace gradfit::io {
namespace {

[[noreturn]] void fail(const std::string& message) {
  throw IoError(message);
}

std::string list_text(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

template <typename Enum>
Enum enum_attribute(const Location& group, const std::string& where, const char* attribute) {
  const std::string text = group.read_string_attribute(attribute);
  Enum value{};
  if (!config::from_string(text, value))
    fail(where + ": attribute '" + attribute + "' is '" + text + "', not one this version knows");
  return value;
}

// The run `selector` names among `names` (the groups under /runs of `file`).
std::string choose_run(const File& file, const std::vector<std::string>& names, const std::string& selector) {
  const std::string choices = " (runs: " + list_text(names) + "; choose with --run NAME|ID|best, or PATH#NAME)";
  if (selector.empty()) {
    if (names.size() == 1) return names[0];
    fail(file.path() + " holds " + std::to_string(names.size()) + " runs; say which" + choices);
  }
  if (selector == kBestRun) {  // the leaderboard's rule (records::best_first)
    std::vector<records::Standing> standings;
    for (const auto& name : names) {
      const Location run = file.open_group("runs/" + name);
      const auto real = [&run](const char* attribute) {
        return run.has_attribute(attribute) ? run.read_double_attribute(attribute)
                                            : std::numeric_limits<double>::quiet_NaN();
      };
      const std::string status = run.has_attribute("status") ? run.read_string_attribute("status") : "";
      standings.push_back({records::parse_run_status(status).value_or(records::RunStatus::interrupted),
                           real("best_val_loss"), real("final_rel_grad_error"), name});
    }
    const size_t best = records::best_first(standings).front();
    const auto status = standings[best].status;
    if (status != records::RunStatus::done && status != records::RunStatus::early_stopped)
      fail(file.path() + ": --run best: no run is done or early_stopped" + choices);
    return names[best];
  }
  for (const auto& name : names)
    if (name == selector) return name;
  for (const auto& name : names) {
    const Location run = file.open_group("runs/" + name);
    if (run.has_attribute("id") && run.read_string_attribute("id") == selector) return name;
  }
  fail(file.path() + ": no run named or with id '" + selector + "'" + choices);
}

// The weights of `run`, checked against the architecture of its attributes (the parameters of its model, by name
// and shape).
NamedTensors read_parameters(const Location& group, const SavedRun& run, const std::string& where) {
  if (!group.has("model")) fail(where + ": missing group 'model' (the weights)");
  const Location weights = group.open_group("model");
  const auto dtype = model::torch_dtype(run.model.dtype);
  NamedTensors parameters;
  const auto like = model::make_mlp(run.model, run.input_dim, /*seed=*/0);
  for (const auto& item : like->named_parameters()) {
    const std::string& name = item.key();
    if (!weights.has(name)) fail(where + ": missing dataset 'model/" + name + "'");
    if (weights.dataset_info(name).shape != item.value().sizes().vec())
      fail(where + ": dataset 'model/" + name + "' does not have the shape of the architecture " +
           model::architecture(run.model, run.input_dim));
    parameters.emplace_back(name, read_parameter(weights, name).to(dtype));
  }
  return parameters;
}

// The run's standardization/ group, checked against its n; inactive without one.
model::Standardization read_standardization(const Location& group, int64_t dim, const std::string& where) {
  model::Standardization st;
  if (!group.has("standardization")) return st;
  const Location s = group.open_group("standardization");
  for (const char* name : {"input_mean", "input_scale"})
    if (!s.has(name) || s.dataset_info(name).shape != std::vector<int64_t>{dim})
      fail(where + ": dataset 'standardization/" + name + "' is missing or not of " + std::to_string(dim) + " values");
  for (const char* name : {"value_scale", "value_offset"})
    if (!s.has_attribute(name)) fail(where + ": missing attribute 'standardization/" + name + "'");
  st.mean = s.read_rows("input_mean", 0, dim);
  st.scale = s.read_rows("input_scale", 0, dim);
  if (s.has("feature_mean") && s.has("feature_scale")) {  // with model.features: φ's (m each)
    const int64_t m = s.dataset_info("feature_mean").shape.at(0);
    if (s.dataset_info("feature_scale").shape != std::vector<int64_t>{m})
      fail(where + ": datasets 'standardization/feature_mean' and 'feature_scale' differ in length");
    st.feature_mean = s.read_rows("feature_mean", 0, m);
    st.feature_scale = s.read_rows("feature_scale", 0, m);
  }
  st.value_scale = s.read_double_attribute("value_scale");
  st.value_offset = s.read_double_attribute("value_offset");
  return st;
}

// atom_centered's attribute element_energies, one per element of the model, and their sum over the run's atoms.
void read_element_energies(const Location& group, const std::string& where, SavedRun& run) {
  if (!group.has_attribute("element_energies")) return;
  auto& st = run.standardization;
  st.element_energies = group.read_double_vector_attribute("element_energies");
  const auto elements = model::distinct_elements(run.model.numbers);
  if (st.element_energies.size() != elements.size())
    fail(where + ": attribute 'element_energies' has " + std::to_string(st.element_energies.size()) +
         " values, not one per element of the model (" + std::to_string(elements.size()) + ")");
  st.atoms_energy = model::atoms_energy_of(st.element_energies, elements, run.model.numbers);
}

// model.features and model.periods (a run written before features existed has the identity's).
// model.features atom_centered's parameters and the atoms' elements, as the results file writes them.
void read_descriptor(const Location& group, const std::string& where, SavedRun& run) {
  config::AtomCenteredSpec::visit(run.model.descriptor, [&](const char* key, auto& value) {
    if (!group.has_attribute(key)) fail(where + ": missing attribute '" + key + "' (model.features atom_centered)");
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, int64_t>)
      value = group.read_int_attribute(key);
    else
      value = group.read_double_attribute(key);
  });
  if (!group.has_attribute("numbers")) fail(where + ": missing attribute 'numbers' (model.features atom_centered)");
  run.model.numbers = group.read_int_vector_attribute("numbers");
  for (const int64_t z : model::distinct_elements(run.model.numbers)) {  // model.element_widths
    const std::string name = std::string("widths_") + element_symbol(z);
    if (group.has_attribute(name)) run.model.element_widths[z] = group.read_int_vector_attribute(name);
  }
}

void read_features(const Location& group, const std::string& where, SavedRun& run) {
  if (group.has_attribute("features"))
    run.model.features = enum_attribute<config::FeatureKind>(group, where, "features");
  if (group.has_attribute("periods")) run.model.periods = group.read_double_vector_attribute("periods");
  if (run.model.features == config::FeatureKind::atom_centered) read_descriptor(group, where, run);
  const std::string error = config::features_dim_error(run.model, run.input_dim);
  if (!error.empty()) fail(where + ": attribute 'features' " + config::to_string(run.model.features) + ": " + error);
}

SavedRun read_run(const File& file, const std::string& name) {
  const std::string where = file.path() + ": run '" + name + "'";
  const Location group = file.open_group("runs/" + name);
  for (const char* attribute : {"widths", "activation", "dtype", "dim"})
    if (!group.has_attribute(attribute)) fail(where + ": missing attribute '" + attribute + "'");
  SavedRun run;
  run.file = file.path();
  run.name = name;
  run.id = group.has_attribute("id") ? group.read_string_attribute("id") : "";
  run.status = group.has_attribute("status") ? group.read_string_attribute("status") : "";
  run.final_rel_grad_error = group.has_attribute("final_rel_grad_error")
                                 ? group.read_double_attribute("final_rel_grad_error")
                                 : std::numeric_limits<double>::quiet_NaN();
  run.model.widths = group.read_int_vector_attribute("widths");
  run.model.activation = enum_attribute<config::Activation>(group, where, "activation");
  run.model.dtype = enum_attribute<config::DType>(group, where, "dtype");
  run.input_dim = group.read_int_attribute("dim");
  if (run.input_dim <= 0 || run.model.widths.empty())
    fail(where + ": attributes 'dim' and 'widths' do not describe a model");
  read_features(group, where, run);
  if (group.has_attribute("numbers")) run.numbers = group.read_int_vector_attribute("numbers");
  if (group.has_attribute("denormals")) run.denormals = enum_attribute<config::Denormals>(group, where, "denormals");
  run.parameters = read_parameters(group, run, where);
  run.standardization = read_standardization(group, run.input_dim, where);
  read_element_energies(group, where, run);
  const auto& features = run.standardization.feature_mean;
  if (!features.empty() && static_cast<int64_t>(features.size()) != model::feature_dim(run.model, run.input_dim))
    fail(where + ": dataset 'standardization/feature_mean' has " + std::to_string(features.size()) +
         " values, not one per feature of " + model::architecture(run.model, run.input_dim));
  return run;
}

}  // namespace

SavedRun read_saved_run(const std::string& path, const std::string& selector) {
  std::string file_path = path, chosen = selector;
  const auto hash = path.rfind('#');
  if (hash != std::string::npos && !std::filesystem::exists(path)) {  // PATH#run-name
    file_path = path.substr(0, hash);
    chosen = path.substr(hash + 1);
    if (!selector.empty() && selector != chosen)
      fail(path + ": the run is chosen twice ('" + chosen + "' and --run '" + selector + "')");
  }
  if (!std::filesystem::exists(file_path)) fail(file_path + ": no such file");
  const File file = File::open_read_only(file_path);
  if (!file.has("runs")) fail(file_path + ": no group /runs (not a gradfit_dist results file)");
  const auto names = file.children("runs");
  if (names.empty()) fail(file_path + ": /runs holds no run");
  return read_run(file, choose_run(file, names, chosen));
}

SavedRun for_atoms(const SavedRun& run, const std::vector<int64_t>& numbers, const std::string& where) {
  const auto elements = run.model.elements.empty() ? model::distinct_elements(run.model.numbers) : run.model.elements;
  for (size_t i = 0; i < numbers.size(); ++i)
    if (!std::binary_search(elements.begin(), elements.end(), numbers[i])) {
      std::string names;
      for (const int64_t z : elements) names += std::string(names.empty() ? "" : ", ") + element_symbol(z);
      const bool element = numbers[i] >= 1 && numbers[i] <= 118;
      throw DataError(where + ": atom " + std::to_string(i) + " has atomic number " + std::to_string(numbers[i]) +
                      (element ? std::string(" (") + element_symbol(numbers[i]) + ")" : std::string()) +
                      ", an element that run '" + run.name + "' has no network for (its elements: " + names + ")");
    }
  SavedRun out = run;
  out.model.numbers = numbers;
  out.model.elements = elements;
  out.input_dim = 3 * static_cast<int64_t>(numbers.size());
  out.standardization.atoms_energy = model::atoms_energy_of(out.standardization.element_energies, elements, numbers);
  return out;
}

model::Mlp make_model(const SavedRun& run) {
  auto mlp = model::make_mlp(run.model, run.input_dim, /*seed=*/0);
  mlp->set_features(model::features_for(run.model, run.input_dim, run.standardization));
  const torch::NoGradGuard no_grad;
  const auto named = mlp->named_parameters();
  for (const auto& [name, tensor] : run.parameters) named[name].copy_(tensor);
  return mlp;
}

}  // namespace gradfit::io
