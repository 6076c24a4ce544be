#include "config/config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>

#include "common/elements.h"
#include "config/section.h"

#if __has_include(<yaml-cpp/depthguard.h>)  // yaml-cpp 0.7 and later bound the parser's nesting
#include <yaml-cpp/depthguard.h>
#define GRADFIT_YAML_HAS_DEPTH_GUARD
#endif

namespace gradfit::config {
namespace {

constexpr NameTable<Activation, 5> kActivations{{{"relu", Activation::relu},
                                                 {"tanh", Activation::tanh},
                                                 {"softplus", Activation::softplus},
                                                 {"silu", Activation::silu},
                                                 {"gelu", Activation::gelu}}};
constexpr NameTable<DType, 2> kDTypes{{{"float32", DType::float32}, {"float64", DType::float64}}};
constexpr NameTable<Optimizer, 4> kOptimizers{
    {{"adam", Optimizer::adam}, {"adamw", Optimizer::adamw}, {"sgd", Optimizer::sgd}, {"lbfgs", Optimizer::lbfgs}}};
constexpr NameTable<Schedule, 4> kSchedules{{{"constant", Schedule::constant},
                                             {"exponential", Schedule::exponential},
                                             {"cosine", Schedule::cosine},
                                             {"plateau", Schedule::plateau}}};
constexpr NameTable<Target, 4> kTargets{{{"quadratic", Target::quadratic},
                                         {"rosenbrock", Target::rosenbrock},
                                         {"gaussian_wells", Target::gaussian_wells},
                                         {"file", Target::file}}};
constexpr NameTable<Sampling, 3> kSamplings{
    {{"grid", Sampling::grid}, {"uniform", Sampling::uniform}, {"normal", Sampling::normal}}};
constexpr NameTable<Loss, 2> kLosses{{{"mse", Loss::mse}, {"huber", Loss::huber}}};
constexpr NameTable<FeatureKind, 4> kFeatures{{{"identity", FeatureKind::identity},
                                               {"inverse_distances", FeatureKind::inverse_distances},
                                               {"periodic", FeatureKind::periodic},
                                               {"atom_centered", FeatureKind::atom_centered}}};
// What each model.features asks of the data and of the other keys (the kind itself: model/features.cpp).
struct FeatureRules {
  FeatureKind kind;
  bool atoms;       // x holds the Cartesian coordinates of 2 or more atoms (n = 3a)
  bool periods;     // takes model.periods, one per component of x
  bool descriptor;  // takes the descriptor's keys (AtomCenteredSpec), and the elements of a data file's `numbers`
};
constexpr FeatureRules kFeatureRules[] = {{FeatureKind::identity, false, false, false},
                                          {FeatureKind::inverse_distances, true, false, false},
                                          {FeatureKind::periodic, false, true, false},
                                          {FeatureKind::atom_centered, true, false, true}};
FeatureRules rules_of(FeatureKind kind) {
  for (const auto& rules : kFeatureRules)
    if (rules.kind == kind) return rules;
  return {kind, false, false, false};
}

// The descriptor's keys, in AtomCenteredSpec::visit's order.
std::vector<std::string> descriptor_keys() {
  std::vector<std::string> keys;
  const AtomCenteredSpec defaults;
  AtomCenteredSpec::visit(defaults, [&](const char* name, const auto&) { keys.emplace_back(name); });
  return keys;
}
constexpr NameTable<Engine, 2> kEngines{{{"analytic", Engine::analytic}, {"autograd", Engine::autograd}}};
constexpr NameTable<Device, 3> kDevices{{{"auto", Device::auto_select}, {"cpu", Device::cpu}, {"cuda", Device::cuda}}};
constexpr NameTable<Denormals, 2> kDenormals{{{"flush", Denormals::flush}, {"keep", Denormals::keep}}};

template <class Enum, size_t K>
const char* name_of(const NameTable<Enum, K>& table, Enum value) {
  for (const auto& [name, v] : table)
    if (v == value) return name;
  return "?";
}

template <class Enum, size_t K>
bool value_of(const NameTable<Enum, K>& table, const std::string& name, Enum& value) {
  for (const auto& [n, v] : table)
    if (name == n) {
      value = v;
      return true;
    }
  return false;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

const std::map<std::string, std::vector<std::string>>& all_section_keys() {
  static const std::map<std::string, std::vector<std::string>> keys{
      {"data",
       {"target", "path", "sampling", "dim", "points_per_axis", "samples", "low", "high", "stddev", "P", "wells",
        "well_width", "seed", "standardize", "test_path"}},
      {"model",
       [] {
         std::vector<std::string> keys{"widths", "activation", "dtype", "features", "periods", "element_widths"};
         for (const auto& key : descriptor_keys()) keys.push_back(key);
         return keys;
       }()},
      {"optimizer",
       {"name", "lr", "momentum", "weight_decay", "max_grad_norm", "schedule", "lr_final", "warmup_epochs",
        "plateau_factor", "plateau_patience", "min_lr", "history_size", "tolerance_grad", "tolerance_change"}},
      {"train",
       {"epochs", "batch_size", "value_weight", "seed", "log_every", "val_fraction", "patience", "engine", "chunk_rows",
        "init_from", "ema_decay", "loss", "huber_delta"}},
      {"output", {"dir"}},
      {"checkpoint", {"every_epochs", "every_seconds"}},
      {"sweep", {"grid", "zip", "random", "samples", "seed", "repeats", "prune"}},
      {"sweep.prune", {"method", "metric", "min_epochs", "reduction_factor", "async"}},
  };
  return keys;
}

// A bound as it reads in a message: "1e10" for a power of ten, else its digits.
std::string limit_text(int64_t limit) {
  int exponent = 0;
  int64_t rest = limit;
  while (rest >= 10 && rest % 10 == 0) rest /= 10, ++exponent;
  return rest == 1 && exponent >= 4 ? "1e" + std::to_string(exponent) : std::to_string(limit);
}

// Fails unless `value` of `key` is at most `limit`.
void check_at_most(const Section& s, const std::string& key, int64_t value, int64_t limit) {
  s.check(value <= limit, key, "must be at most " + limit_text(limit), value);
}

// The parameters of an MLP with `widths` on n inputs (as model::parameter_count), or -1 past kMaxParameters.
int64_t bounded_parameter_count(const std::vector<int64_t>& widths, int64_t input_dim) {
  int64_t count = 0, in = input_dim, layer = 0;
  for (const int64_t out : widths) {
    if (__builtin_mul_overflow(in + 1, out, &layer) || __builtin_add_overflow(count, layer, &count)) return -1;
    in = out;
  }
  if (__builtin_add_overflow(count, in + 1, &count)) return -1;
  return count > kMaxParameters ? -1 : count;
}

// The bounds on the counts of a data section that exist before its target is read (see kMaxDim).
void check_data_bounds(const Section& s, const DataSpec& d) {
  check_at_most(s, "dim", d.dim, kMaxDim);
  check_at_most(s, "samples", d.samples, kMaxSamples);
  check_at_most(s, "wells", d.wells, kMaxWells);
}

// A path from the YAML: relative paths are relative to the YAML file's folder (empty stays empty).
std::string relative_to_file(const Section& s, const std::string& path) {
  if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(s.file()).parent_path() / path).lexically_normal().string();
}

DataSpec parse_data(const Section& s) {
  DataSpec d;
  d.target = s.get_enum("target", kTargets, d.target);
  d.sampling = s.get_enum("sampling", kSamplings, d.sampling);
  d.dim = s.get<int64_t>("dim", d.dim);
  d.points_per_axis = s.get<int64_t>("points_per_axis", d.points_per_axis);
  d.samples = s.get<int64_t>("samples", d.samples);
  d.low = s.get<double>("low", d.low);
  d.high = s.get<double>("high", d.high);
  d.stddev = s.get<double>("stddev", d.stddev);
  d.wells = s.get<int64_t>("wells", d.wells);
  d.well_width = s.get<double>("well_width", d.well_width);
  d.seed = s.get<uint64_t>("seed", d.seed);
  d.standardize = s.get<bool>("standardize", d.standardize);

  s.check(d.low < d.high, "high", "must be greater than data.low", d.high);
  s.check(d.stddev > 0, "stddev", "must be > 0", d.stddev);
  s.check(d.points_per_axis >= 1, "points_per_axis", "must be >= 1", d.points_per_axis);
  s.check(d.samples >= 1, "samples", "must be >= 1", d.samples);
  s.check(d.wells >= 1, "wells", "must be >= 1", d.wells);
  s.check(d.well_width > 0, "well_width", "must be > 0", d.well_width);
  check_data_bounds(s, d);

  d.test_path = relative_to_file(s, s.get<std::string>("test_path", d.test_path));
  switch (d.target) {
    case Target::file: d.path = relative_to_file(s, s.require<std::string>("path")); break;
    case Target::quadratic: {
      const auto rows = s.require<std::vector<std::vector<double>>>("P");
      const auto n = static_cast<int64_t>(rows.size());
      s.check(n >= 1, "P", "must be a non-empty square matrix", "[]");
      check_at_most(s, "P", n, kMaxDim);
      for (const auto& row : rows) {
        s.check(static_cast<int64_t>(row.size()) == n, "P",
                "must be a square matrix: every row needs " + std::to_string(n) + " entries",
                std::to_string(row.size()) + " entries in a row");
        d.P.insert(d.P.end(), row.begin(), row.end());
      }
      s.check(!s.has("dim") || d.dim == n, "dim", "must match the size of data.P", d.dim);
      d.dim = n;
      break;
    }
    case Target::rosenbrock: s.check(d.dim >= 2, "dim", "rosenbrock needs dim >= 2", d.dim); break;
    case Target::gaussian_wells: s.check(d.dim >= 1, "dim", "must be >= 1", d.dim); break;
  }
  if (d.target != Target::file && d.sampling == Sampling::grid)
    s.check(grid_point_count(d.points_per_axis, d.dim) >= 0, "points_per_axis",
            "gives more than " + limit_text(kMaxSamples) + " grid points in " + std::to_string(d.dim) + "-D",
            d.points_per_axis);
  return d;
}

std::string number_text(double v);

// model.features atom_centered's keys: lengths (Å) and exponents > 0 (ζ >= 1, where ((1 + cos)/2)^ζ stays
// differentiable at 0), each shift grid's start in [0, its cutoff), counts from 1 to kMaxDivisions.
void parse_descriptor(const Section& s, ModelSpec& m) {
  constexpr int64_t kMaxDivisions = 1000;
  const bool takes = rules_of(m.features).descriptor;
  AtomCenteredSpec::visit(m.descriptor, [&](const char* key, auto& value) {
    s.check(takes || !s.has(key), key, "applies to model.features atom_centered only", to_string(m.features));
    value = s.get(key, value);
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, int64_t>) {
      s.check(value >= 1 && value <= kMaxDivisions, key, "must be from 1 to " + std::to_string(kMaxDivisions), value);
    } else {
      s.check(std::isfinite(value) && (value > 0 || std::string(key).find("_start") != std::string::npos), key,
              "must be a finite number > 0", value);
    }
  });
  const AtomCenteredSpec& d = m.descriptor;
  s.check(d.zeta >= 1, "zeta", "must be >= 1", d.zeta);
  s.check(d.radial_start >= 0 && d.radial_start < d.radial_cutoff, "radial_start",
          "must be >= 0 and below model.radial_cutoff (" + number_text(d.radial_cutoff) + ")", d.radial_start);
  s.check(d.angular_start >= 0 && d.angular_start < d.angular_cutoff, "angular_start",
          "must be >= 0 and below model.angular_cutoff (" + number_text(d.angular_cutoff) + ")", d.angular_start);
}

// Hidden widths under `key`: 1 to kMaxLayers layers of 1 to kMaxWidth each (`what` names them in messages).
void check_widths(const Section& s, const std::string& key, const std::vector<int64_t>& widths,
                  const std::string& what) {
  s.check(!widths.empty(), key, what + "needs at least one hidden layer", "[]");
  s.check(static_cast<int64_t>(widths.size()) <= kMaxLayers, key,
          what + "must have at most " + limit_text(kMaxLayers) + " hidden layers",
          std::to_string(widths.size()) + " layers");
  for (const int64_t w : widths) s.check(w >= 1, key, what + "every width must be >= 1", w);
  for (const int64_t w : widths)
    s.check(w <= kMaxWidth, key, what + "every width must be at most " + limit_text(kMaxWidth), w);
}

// model.element_widths (atom_centered only): element symbols to hidden widths, by atomic number.
std::map<int64_t, std::vector<int64_t>> parse_element_widths(const Section& s, const ModelSpec& m) {
  std::map<int64_t, std::vector<int64_t>> out;
  if (!s.has("element_widths")) return out;
  s.check(rules_of(m.features).descriptor, "element_widths", "applies to model.features atom_centered only",
          to_string(m.features));
  const auto by_symbol = s.get<std::map<std::string, std::vector<int64_t>>>("element_widths", {});
  for (const auto& [symbol, widths] : by_symbol) {
    const int64_t number = element_number(symbol);
    s.check(number > 0, "element_widths", "'" + symbol + "' is not an element symbol (H, He, Li, ...)", symbol);
    check_widths(s, "element_widths", widths, symbol + "'s network ");
    out[number] = widths;
  }
  return out;
}

ModelSpec parse_model(const Section& s) {
  ModelSpec m;
  m.widths = s.get<std::vector<int64_t>>("widths", m.widths);
  m.activation = s.get_enum("activation", kActivations, m.activation);
  m.dtype = s.get_enum("dtype", kDTypes, m.dtype);
  check_widths(s, "widths", m.widths, "");
  m.features = s.get_enum("features", kFeatures, m.features);
  m.periods = s.get<std::vector<double>>("periods", m.periods);
  const bool periods = rules_of(m.features).periods;
  s.check(periods || !s.has("periods"), "periods", "applies to model.features periodic only", to_string(m.features));
  s.check(!periods || !m.periods.empty(), "periods",
          "model.features periodic needs model.periods, a period L_i >= 0 per component of x (0: not periodic)",
          "none");
  bool some_periodic = false;
  for (const double period : m.periods) {
    s.check(std::isfinite(period) && period >= 0, "periods", "every period must be >= 0 (0: not periodic)", period);
    some_periodic = some_periodic || period > 0;
  }
  s.check(m.periods.empty() || some_periodic, "periods", "needs at least one period > 0", "all 0");
  parse_descriptor(s, m);
  m.element_widths = parse_element_widths(s, m);
  return m;
}

// The data's n against what the features need (also checked against a data file's n, app.cpp).
void check_features_dim(const Section& s, const ModelSpec& m, int64_t dim) {
  const std::string error = features_dim_error(m, dim);
  if (!error.empty()) s.fail(s.child(features_dim_key(m)), error, features_dim_key(m));
}

// The schedule's keys. Those of another schedule are ignored (and left out of the run's id), so that one base
// configuration can sweep over optimizer.schedule; `epochs` bounds the warmup.
void parse_schedule(const Section& s, OptimizerSpec& o, int64_t epochs) {
  o.schedule = s.get_enum("schedule", kSchedules, o.schedule);
  o.lr_final = s.get<double>("lr_final", o.lr / 100);
  o.warmup_epochs = s.get<int64_t>("warmup_epochs", o.warmup_epochs);
  o.plateau_factor = s.get<double>("plateau_factor", o.plateau_factor);
  o.plateau_patience = s.get<int64_t>("plateau_patience", o.plateau_patience);
  o.min_lr = s.get<double>("min_lr", o.min_lr);
  if (o.schedule == Schedule::exponential) {
    s.check(std::isfinite(o.lr_final) && o.lr_final > 0, "lr_final", "must be > 0 for schedule exponential",
            o.lr_final);
    s.check(epochs >= 2, "schedule", "exponential needs train.epochs >= 2", "exponential");
  }
  if (o.schedule == Schedule::cosine) {
    s.check(std::isfinite(o.lr_final) && o.lr_final >= 0, "lr_final", "must be >= 0", o.lr_final);
    s.check(o.warmup_epochs >= 0 && o.warmup_epochs < epochs, "warmup_epochs",
            "must be >= 0 and less than train.epochs (" + std::to_string(epochs) + ")", o.warmup_epochs);
  }
  if (o.schedule == Schedule::plateau) {
    s.check(o.plateau_factor > 0 && o.plateau_factor < 1, "plateau_factor", "must be in (0, 1)", o.plateau_factor);
    s.check(o.plateau_patience >= 0, "plateau_patience", "must be >= 0", o.plateau_patience);
    s.check(std::isfinite(o.min_lr) && o.min_lr >= 0, "min_lr", "must be >= 0", o.min_lr);
  }
}

// torch.optim.LBFGS's tolerance_grad and tolerance_change (as history_size: read for every optimizer, used by lbfgs).
void parse_lbfgs_tolerances(const Section& s, OptimizerSpec& o) {
  o.tolerance_grad = s.get<double>("tolerance_grad", o.tolerance_grad);
  s.check(std::isfinite(o.tolerance_grad) && o.tolerance_grad >= 0, "tolerance_grad", "must be >= 0", o.tolerance_grad);
  o.tolerance_change = s.get<double>("tolerance_change", o.tolerance_change);
  s.check(std::isfinite(o.tolerance_change) && o.tolerance_change >= 0, "tolerance_change", "must be >= 0",
          o.tolerance_change);
}

OptimizerSpec parse_optimizer(const Section& s, int64_t epochs) {
  OptimizerSpec o;
  o.name = s.get_enum("name", kOptimizers, o.name);
  o.lr = s.get<double>("lr", o.lr);
  o.momentum = s.get<double>("momentum", o.momentum);
  o.weight_decay = s.get<double>("weight_decay", o.name == Optimizer::adamw ? 0.01 : 0.0);
  o.max_grad_norm = s.get<double>("max_grad_norm", o.max_grad_norm);
  s.check(std::isfinite(o.lr) && o.lr > 0, "lr", "must be > 0", o.lr);
  s.check(o.momentum >= 0 && o.momentum < 1, "momentum", "must be in [0, 1)", o.momentum);
  s.check(o.name == Optimizer::sgd || o.momentum == 0, "momentum", "applies to optimizer sgd only", o.momentum);
  s.check(std::isfinite(o.weight_decay) && o.weight_decay >= 0, "weight_decay", "must be >= 0", o.weight_decay);
  s.check(o.name == Optimizer::adamw || o.weight_decay == 0, "weight_decay", "applies to optimizer adamw only",
          o.weight_decay);
  s.check(std::isfinite(o.max_grad_norm) && o.max_grad_norm >= 0, "max_grad_norm", "must be >= 0 (0: no clipping)",
          o.max_grad_norm);
  // L-BFGS's line search needs the true gradient of the loss it evaluates: a clipped one breaks its conditions.
  s.check(o.name != Optimizer::lbfgs || o.max_grad_norm == 0, "max_grad_norm",
          "does not apply to optimizer lbfgs (its line search needs the true gradient)", o.max_grad_norm);
  o.history_size = s.get<int64_t>("history_size", o.history_size);
  s.check(o.history_size >= 1 && o.history_size <= 100000, "history_size", "must be in [1, 100000]", o.history_size);
  parse_lbfgs_tolerances(s, o);
  parse_schedule(s, o, epochs);
  return o;
}

TrainSpec parse_train(const Section& s, int64_t samples) {
  TrainSpec t;
  t.epochs = s.get<int64_t>("epochs", t.epochs);
  t.batch_size = s.get<int64_t>("batch_size", t.batch_size);
  t.value_weight = s.get<double>("value_weight", t.value_weight);
  t.loss = s.get_enum("loss", kLosses, t.loss);
  t.huber_delta = s.get<double>("huber_delta", t.huber_delta);
  s.check(std::isfinite(t.huber_delta) && t.huber_delta > 0, "huber_delta", "must be > 0", t.huber_delta);
  t.seed = s.get<uint64_t>("seed", t.seed);
  t.log_every = s.get<int64_t>("log_every", t.log_every);
  t.val_fraction = s.get<double>("val_fraction", t.val_fraction);
  t.patience = s.get<int64_t>("patience", t.patience);
  t.engine = s.get_enum("engine", kEngines, t.engine);
  t.chunk_rows = s.get<int64_t>("chunk_rows", t.chunk_rows);
  t.init_from = s.get<std::string>("init_from", t.init_from);
  t.ema_decay = s.get<double>("ema_decay", t.ema_decay);
  s.check(t.ema_decay >= 0 && t.ema_decay < 1, "ema_decay", "must be in [0, 1) (0: no moving average)", t.ema_decay);
  t.init_from = relative_to_file(s, t.init_from);
  s.check(t.epochs >= 1, "epochs", "must be >= 1", t.epochs);
  s.check(t.batch_size >= 0, "batch_size", "must be >= 0 (0 means full batch)", t.batch_size);
  s.check(samples < 0 || t.batch_size <= samples, "batch_size",
          "is larger than the " + std::to_string(samples) + " samples of the data", t.batch_size);
  s.check(t.value_weight >= 0, "value_weight", "must be >= 0", t.value_weight);
  s.check(t.log_every >= 0, "log_every", "must be >= 0", t.log_every);
  s.check(t.val_fraction >= 0 && t.val_fraction < 1, "val_fraction", "must be in [0, 1)", t.val_fraction);
  s.check(t.patience >= 0, "patience", "must be >= 0 (0 means no early stopping)", t.patience);
  s.check(t.patience == 0 || t.val_fraction > 0, "patience", "needs train.val_fraction > 0", t.patience);
  s.check(t.chunk_rows >= 0, "chunk_rows", "must be >= 0 (0 means chosen automatically)", t.chunk_rows);
  check_at_most(s, "batch_size", t.batch_size, kMaxSamples);
  check_at_most(s, "chunk_rows", t.chunk_rows, kMaxSamples);
  if (t.log_every == 0) {  // about ten lines: epochs / 10 rounded to one significant digit
    const double tenth = std::max(1.0, static_cast<double>(t.epochs) / 10.0);
    const double unit = std::pow(10.0, std::floor(std::log10(tenth)));
    t.log_every = static_cast<int64_t>(unit * std::round(tenth / unit));
  }
  return t;
}

// A missing section reads as an empty mapping, so its keys take their defaults (or the sweep point's values).
Section section(const std::string& file, const YAML::Node& root, const std::string& name,
                const SweptValues& swept = {}) {
  const YAML::Node node = root[name] ? root[name] : YAML::Node(YAML::NodeType::Map);
  return Section(file, node, name, section_keys(name), swept);
}

// The list of the file's sweep that varies `key` ("sweep.grid"), or "" when none does.
std::string sweeping_list(const YAML::Node& root, const std::string& key) {
  const YAML::Node sweep = root["sweep"];
  if (!sweep || !sweep.IsMap()) return "";
  for (const char* list : {"grid", "zip", "random"}) {
    const YAML::Node node = sweep[list];
    if (node && node.IsMap() && node[key]) return std::string("sweep.") + list;
  }
  return "";
}

// A safe file name, since results go to results/<name>: 1-100 of [A-Za-z0-9._-], not starting with '.'.
bool is_safe_name(const std::string& name) {
  if (name.empty() || name.size() > 100 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '_' || c == '-'; });
}

// Applies one --set "key=value" to the document.
void apply_override(YAML::Node& root, const std::string& setting) {
  const auto equals = setting.find('=');
  const std::string where = "--set " + setting;
  if (equals == std::string::npos || equals == 0) throw ConfigError(where + ": expected key=value");
  const std::string key = setting.substr(0, equals);
  YAML::Node value;
  try {
    value = YAML::Load(setting.substr(equals + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError(where + ": invalid value: " + e.msg);
  }
  check_tree(where, value, key);
  const auto valid = settable_keys(/*include_top_level=*/true);
  if (std::find(valid.begin(), valid.end(), key) == valid.end()) {
    const std::string near = nearest(key, valid);
    throw ConfigError(where + ": unknown key '" + key + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?"));
  }
  // The sweep would set the key again for every run, silently discarding this value.
  const std::string list = sweeping_list(root, key);
  if (!list.empty())
    throw ConfigError(where + ": " + list + " sets " + key + " for every run; change the sweep instead");
  // Down the dotted path (sections, and sweep.prune's mapping), each level made a mapping where it is not one.
  YAML::Node node = root;
  size_t start = 0;
  for (size_t dot = key.find('.'); dot != std::string::npos; start = dot + 1, dot = key.find('.', start)) {
    const std::string part = key.substr(start, dot - start);
    if (!node[part] || !node[part].IsMap()) node[part] = YAML::Node(YAML::NodeType::Map);
    node.reset(node[part]);
  }
  node[key.substr(start)] = value;
}

std::string number_text(double v) {
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}

// The optimizer's settings beyond name, lr and momentum, each named only where it applies (adamw's decay, a
// clipping, a schedule's own keys), so that every run without them keeps the id it had before they existed.
void canonical_optimizer_extras(std::ostream& os, const OptimizerSpec& o) {
  if (o.name == Optimizer::adamw) os << "optimizer.weight_decay=" << number_text(o.weight_decay) << "\n";
  if (o.max_grad_norm > 0) os << "optimizer.max_grad_norm=" << number_text(o.max_grad_norm) << "\n";
  if (o.name == Optimizer::lbfgs) os << "optimizer.history_size=" << o.history_size << "\n";
  if (o.name == Optimizer::lbfgs && o.tolerance_grad != OptimizerSpec{}.tolerance_grad)
    os << "optimizer.tolerance_grad=" << number_text(o.tolerance_grad) << "\n";
  if (o.name == Optimizer::lbfgs && o.tolerance_change != OptimizerSpec{}.tolerance_change)
    os << "optimizer.tolerance_change=" << number_text(o.tolerance_change) << "\n";
  if (o.schedule == Schedule::constant) return;
  os << "optimizer.schedule=" << to_string(o.schedule) << "\n";
  if (o.schedule == Schedule::exponential || o.schedule == Schedule::cosine)
    os << "optimizer.lr_final=" << number_text(o.lr_final) << "\n";
  if (o.schedule == Schedule::cosine) os << "optimizer.warmup_epochs=" << o.warmup_epochs << "\n";
  if (o.schedule == Schedule::plateau)
    os << "optimizer.plateau_factor=" << number_text(o.plateau_factor)
       << "\noptimizer.plateau_patience=" << o.plateau_patience << "\noptimizer.min_lr=" << number_text(o.min_lr)
       << "\n";
}

// yaml-cpp's message, or for its own bound on nesting (which says "bad file") what that bound is about.
std::string parser_message(const YAML::ParserException& e) {
#ifdef GRADFIT_YAML_HAS_DEPTH_GUARD
  if (dynamic_cast<const YAML::DeepRecursion*>(&e))
    return "nested deeper than the YAML parser follows (this tool takes " + std::to_string(kMaxYamlDepth) + " levels)";
#endif
  return e.msg;
}

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

}  // namespace

std::string stable_id(const RunSpec& run) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(fnv1a(canonical_text(run))));
  return std::string(hex, 12);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string nearest(const std::string& key, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& candidate : candidates) {
    const size_t d = edit_distance(key, candidate);
    if (d < best_distance) best_distance = d, best = &candidate;
  }
  return best && best_distance <= std::max<size_t>(2, key.size() / 3) ? *best : "";
}

namespace {

// Every walk of a document after check_tree recurses at most kMaxYamlDepth levels and visits at most kMaxYamlNodes
// nodes: an alias inside the node it names (`a: &x [*x]`) would make every recursive walk endless, and aliases of
// aliases can make a short file a huge tree.
class TreeCheck {
 public:
  explicit TreeCheck(const std::string& file) : file_(file) {}

  void walk(const YAML::Node& node, const std::string& prefix) {
    if (++visited_ > kMaxYamlNodes)
      fail_at(file_, node, prefix,
              "the document repeats its aliases into more than " + std::to_string(kMaxYamlNodes) + " nodes");
    if (!node.IsSequence() && !node.IsMap()) return;
    for (const auto& ancestor : path_)
      if (ancestor.is(node)) fail_at(file_, node, prefix, "a YAML alias refers to a node that contains it (a cycle)");
    if (static_cast<int>(path_.size()) >= kMaxYamlDepth)
      fail_at(file_, node, prefix, "nested deeper than " + std::to_string(kMaxYamlDepth) + " levels");
    path_.push_back(node);
    if (node.IsSequence()) {
      size_t index = 0;
      for (const auto& item : node) walk(item, prefix + "[" + std::to_string(index++) + "]");
    } else {
      walk_mapping(node, prefix);
    }
    path_.pop_back();
  }

 private:
  // Fails at the second of two equal keys (yaml-cpp keeps both; node[key] finds the first), naming both places.
  void walk_mapping(const YAML::Node& node, const std::string& prefix) {
    std::map<std::string, YAML::Mark> seen;
    for (const auto& item : node) {
      const std::string key = item.first.IsScalar() ? item.first.Scalar() : "?";
      const std::string dotted = prefix.empty() ? key : prefix + "." + key;
      const auto [first, fresh] = seen.emplace(key, item.first.Mark());
      const YAML::Mark second = item.first.Mark();
      if (!fresh && item.first.IsScalar() && first->second.line != second.line)
        fail_at(file_, item.first, dotted,
                "appears twice (lines " + std::to_string(first->second.line + 1) + " and " +
                    std::to_string(second.line + 1) + ")");
      if (!fresh && item.first.IsScalar())
        fail_at(file_, item.first, dotted,
                "appears twice (line " + std::to_string(second.line + 1) + ", columns " +
                    std::to_string(first->second.column + 1) + " and " + std::to_string(second.column + 1) + ")");
      walk(item.second, dotted);
    }
  }

  const std::string& file_;
  std::vector<YAML::Node> path_;  // the mappings and lists from the root down to the node walked
  int64_t visited_ = 0;
};

}  // namespace

void check_tree(const std::string& file, const YAML::Node& node, const std::string& prefix) {
  TreeCheck(file).walk(node, prefix);
}

void fail_at(const std::string& file, const YAML::Node& at, const std::string& dotted_key, const std::string& message) {
  std::ostringstream os;
  os << file;
  const YAML::Mark mark = at.Mark();
  if (!mark.is_null()) os << ":" << mark.line + 1 << ":" << mark.column + 1;
  os << ": ";
  if (!dotted_key.empty()) os << "key '" << dotted_key << "': ";
  os << message;
  throw ConfigError(os.str());
}

Section::Section(const std::string& file, const YAML::Node& node, std::string prefix,
                 const std::vector<std::string>& allowed, const SweptValues& swept)
    : file_(file), node_(node), prefix_(std::move(prefix)), swept_(swept) {
  if (!node_.IsMap())
    fail_at(file_, node_, prefix_, prefix_.empty() ? "the file must be a YAML mapping" : "must be a mapping");
  for (const auto& item : node_) {
    if (!item.first.IsScalar()) fail_at(file_, item.first, prefix_, "a key must be a name, not a list or mapping");
    const auto key = item.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    const std::string near = nearest(key, allowed);
    fail_at(file_, item.first, dotted(key),
            near.empty() ? "unknown key (valid keys here: " + join(allowed) + ")"
                         : "unknown key; did you mean '" + dotted(near) + "'?");
  }
}

const std::vector<std::string>& top_level_keys() {
  static const std::vector<std::string> keys{"name",          "device",    "denormals",  "ranks_per_run",
                                             "ensemble_size", "output",    "checkpoint", "data",
                                             "model",         "optimizer", "train",      "sweep"};
  return keys;
}

const std::vector<std::string>& section_keys(const std::string& name) {
  return all_section_keys().at(name);
}

std::vector<std::string> settable_keys(bool include_top_level) {
  std::vector<std::string> keys;
  if (include_top_level)
    keys = {"name",
            "device",
            "denormals",
            "ranks_per_run",
            "ensemble_size",
            "output.dir",
            "checkpoint.every_epochs",
            "checkpoint.every_seconds"};
  if (include_top_level)
    for (const auto& key : section_keys("sweep.prune")) keys.push_back("sweep.prune." + key);
  for (const char* section : {"data", "model", "optimizer", "train"})
    for (const auto& key : section_keys(section)) keys.push_back(std::string(section) + "." + key);
  return keys;
}

// Fails when a model of the run's widths has more than kMaxParameters parameters (on n = 1 for a data file, whose
// n is not known yet).
void check_parameter_count(const Section& s, const RunSpec& run) {
  const int64_t dim = run.data.target == Target::file ? 1 : run.data.dim;
  const auto check = [&](const std::string& key, const std::vector<int64_t>& widths_of_network) {
    if (bounded_parameter_count(widths_of_network, dim) >= 0) return;
    std::string widths;
    for (const int64_t w : widths_of_network) widths += (widths.empty() ? "" : ", ") + std::to_string(w);
    s.check(false, key,
            "gives more than " + limit_text(kMaxParameters) + " parameters on " + std::to_string(dim) + " input" +
                (dim == 1 ? "" : "s"),
            "[" + widths + "]");
  };
  check("widths", run.model.widths);
  for (const auto& [number, widths] : run.model.element_widths) check("element_widths", widths);
}

// What model.features atom_centered asks of the other sections today: atoms from a data file (its attribute
// `numbers` names the elements), and no data.standardize (a scaling shared by every atom of an element is not
// built yet).
void check_atom_centered(const std::string& file, const YAML::Node& root, const SweptValues& swept,
                         const RunSpec& run) {
  const Section model = section(file, root, "model", swept);
  model.check(run.data.target == Target::file, "features",
              "atom_centered needs data.target file (its attribute 'numbers' names the elements)",
              to_string(run.data.target));
  const Section data = section(file, root, "data", swept);
  data.check(!run.data.standardize, "standardize", "is not built yet for model.features atom_centered", "true");
}

RunSpec parse_run(const YAML::Node& root, const std::string& file, const SweptValues& swept) {
  RunSpec run;
  const bool sweeps_data = swept.lower_bound("data.") != swept.lower_bound("data/");  // a key "data.*"
  if (!root["data"] && !sweeps_data) fail_at(file, root, "data", "missing required section");
  run.data = parse_data(section(file, root, "data", swept));
  run.model = parse_model(section(file, root, "model", swept));
  if (run.data.target != Target::file) check_features_dim(section(file, root, "model", swept), run.model, run.data.dim);
  check_parameter_count(section(file, root, "model", swept), run);
  run.train = parse_train(section(file, root, "train", swept), analytic_sample_count(run.data));
  run.optimizer = parse_optimizer(section(file, root, "optimizer", swept), run.train.epochs);
  // L-BFGS is full batch: its line search compares losses of one fixed objective.
  if (run.optimizer.name == Optimizer::lbfgs)
    section(file, root, "train", swept)
        .check(run.train.batch_size == 0, "batch_size", "must be 0 (full batch) for optimizer lbfgs",
               run.train.batch_size);
  if (rules_of(run.model.features).descriptor) check_atom_centered(file, root, swept, run);
  return run;
}

const std::vector<int64_t>& network_widths(const ModelSpec& spec, int64_t number) {
  const auto it = spec.element_widths.find(number);
  return it != spec.element_widths.end() ? it->second : spec.widths;
}

Config parse_config(const std::string& yaml_text, const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": invalid YAML: " + parser_message(e));
  }
  if (!root || root.IsNull()) throw ConfigError(path + ": the file is empty");
  if (!root.IsMap()) fail_at(path, root, "", "the file must be a YAML mapping");
  check_tree(path, root);
  for (const auto& setting : overrides) apply_override(root, setting);

  Config config;
  config.path = path;
  config.yaml_text = yaml_text;
  const Section top(path, root, "", top_level_keys());
  config.name = top.get<std::string>("name", std::filesystem::path(path).stem().string());
  if (top.has("name"))  // the default, the file's stem, is a file name already
    top.check(is_safe_name(config.name), "name",
              "must be 1 to 100 of the characters A-Z a-z 0-9 . _ - and not start with '.'",
              config.name.size() > 100 ? std::to_string(config.name.size()) + " characters" : "'" + config.name + "'");
  top.check(!config.name.empty() && config.name.find('/') == std::string::npos, "name",
            "must be non-empty and without '/'", config.name);
  config.device = top.get_enum("device", kDevices, config.device);
  config.denormals = top.get_enum("denormals", kDenormals, config.denormals);
  config.ranks_per_run = top.get<int>("ranks_per_run", 0);
  top.check(config.ranks_per_run >= 0, "ranks_per_run", "must be >= 1 (or 0 for all ranks)", config.ranks_per_run);
  config.ensemble_size = top.get<int>("ensemble_size", 0);
  top.check(config.ensemble_size >= 0, "ensemble_size", "must be >= 1 (or 0 to choose automatically)",
            config.ensemble_size);
  config.output_dir = section(path, root, "output").get<std::string>("dir", "");
  const Section checkpoint = section(path, root, "checkpoint");
  config.checkpoint_every = checkpoint.get<int64_t>("every_epochs", config.checkpoint_every);
  config.checkpoint_seconds = checkpoint.get<double>("every_seconds", config.checkpoint_seconds);
  checkpoint.check(config.checkpoint_every >= 0, "every_epochs", "must be >= 0", config.checkpoint_every);
  checkpoint.check(config.checkpoint_seconds >= 0, "every_seconds", "must be >= 0", config.checkpoint_seconds);

  if (root["sweep"]) {
    config.is_sweep = true;
    config.runs = expand_sweep(root, root["sweep"], path);  // the runs read data, model, optimizer and train
    config.prune = parse_prune(root["sweep"], path, config.runs);
  } else {
    RunSpec run = parse_run(root, path);
    run.name = config.name;
    run.id = stable_id(run);
    config.runs.push_back(run);
  }
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open the sweep file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, overrides);
}

int64_t grid_point_count(int64_t points_per_axis, int64_t dim) {
  if (points_per_axis == 1) return 1;  // for any n
  int64_t total = 1;
  for (int64_t j = 0; j < dim; ++j)  // ends after at most 34 factors (of 2 or more), past kMaxSamples
    if (__builtin_mul_overflow(total, points_per_axis, &total) || total > kMaxSamples) return -1;
  return total;
}

int64_t analytic_sample_count(const DataSpec& spec) {
  if (spec.target == Target::file) return -1;
  if (spec.sampling != Sampling::grid) return spec.samples;
  return grid_point_count(spec.points_per_axis, spec.dim);
}

std::string canonical_data_text(const DataSpec& d) {
  std::ostringstream os;
  os << "data.target=" << to_string(d.target) << "\n";
  if (d.target == Target::file) {
    os << "data.path=" << d.path << "\n";
  } else {
    os << "data.sampling=" << to_string(d.sampling) << "\ndata.dim=" << d.dim << "\n";
    if (d.sampling == Sampling::grid) os << "data.points_per_axis=" << d.points_per_axis << "\n";
    const bool wells = d.target == Target::gaussian_wells;  // centres drawn in [low, high]^n from the seed
    if (d.sampling != Sampling::grid) os << "data.samples=" << d.samples << "\n";
    if (d.sampling != Sampling::grid || wells) os << "data.seed=" << d.seed << "\n";
    if (d.sampling != Sampling::normal || wells)
      os << "data.low=" << number_text(d.low) << "\ndata.high=" << number_text(d.high) << "\n";
    if (d.sampling == Sampling::normal) os << "data.stddev=" << number_text(d.stddev) << "\n";
    if (d.target == Target::quadratic) {
      os << "data.P=";
      for (const double p : d.P) os << number_text(p) << ",";
      os << "\n";
    }
    if (wells) os << "data.wells=" << d.wells << "\ndata.well_width=" << number_text(d.well_width) << "\n";
  }
  if (d.standardize) os << "data.standardize=true\n";  // named only when set: other runs keep their ids
  if (!d.test_path.empty()) os << "data.test_path=" << d.test_path << "\n";  // likewise
  return os.str();
}

std::string canonical_text(const RunSpec& r) {
  std::ostringstream os;
  os << canonical_data_text(r.data);
  os << "model.widths=";
  for (const int64_t w : r.model.widths) os << w << ",";
  os << "\nmodel.activation=" << to_string(r.model.activation) << "\nmodel.dtype=" << to_string(r.model.dtype);
  if (r.model.features != FeatureKind::identity) {  // named only when set, so that every other run keeps its id
    os << "\nmodel.features=" << to_string(r.model.features);
    if (!r.model.periods.empty()) {  // periodic's
      os << "\nmodel.periods=";
      for (const double p : r.model.periods) os << number_text(p) << ",";
    }
    if (rules_of(r.model.features).descriptor)  // atom_centered's
      AtomCenteredSpec::visit(r.model.descriptor, [&](const char* key, const auto& value) {
        os << "\nmodel." << key << "=" << number_text(static_cast<double>(value));
      });
    for (const auto& [number, widths] : r.model.element_widths) {  // named only when set
      os << "\nmodel.element_widths." << element_symbol(number) << "=";
      for (const int64_t w : widths) os << w << ",";
    }
  }
  os << "\noptimizer.name=" << to_string(r.optimizer.name) << "\noptimizer.lr=" << number_text(r.optimizer.lr)
     << "\noptimizer.momentum=" << number_text(r.optimizer.momentum) << "\ntrain.epochs=" << r.train.epochs
     << "\ntrain.batch_size=" << r.train.batch_size << "\ntrain.value_weight=" << number_text(r.train.value_weight)
     << "\ntrain.seed=" << r.train.seed << "\ntrain.val_fraction=" << number_text(r.train.val_fraction)
     << "\ntrain.patience=" << r.train.patience << "\n";
  // Execution settings, not part of the math: named only when set, so that runs differing in them alone (a sweep
  // over engines) still get distinct ids while every other run keeps its id.
  if (r.train.engine != Engine::analytic) os << "train.engine=" << to_string(r.train.engine) << "\n";
  if (r.train.chunk_rows != 0) os << "train.chunk_rows=" << r.train.chunk_rows << "\n";
  // Part of the math, named only when set so that every run without it keeps its id.
  if (!r.train.init_from.empty()) os << "train.init_from=" << r.train.init_from << "\n";
  if (r.train.ema_decay > 0) os << "train.ema_decay=" << number_text(r.train.ema_decay) << "\n";
  if (r.train.loss != Loss::mse)  // named only when not the default, so that every other run keeps its id
    os << "train.loss=" << to_string(r.train.loss) << "\ntrain.huber_delta=" << number_text(r.train.huber_delta)
       << "\n";
  canonical_optimizer_extras(os, r.optimizer);
  return os.str();
}

const char* to_string(Activation a) {
  return name_of(kActivations, a);
}
const char* to_string(DType d) {
  return name_of(kDTypes, d);
}
const char* to_string(Engine e) {
  return name_of(kEngines, e);
}
const char* to_string(Loss l) {
  return name_of(kLosses, l);
}
const char* to_string(FeatureKind f) {
  return name_of(kFeatures, f);
}

const char* features_dim_key(const ModelSpec& m) {
  return rules_of(m.features).periods ? "periods" : "features";
}
bool features_need_elements(const ModelSpec& m) {
  return rules_of(m.features).descriptor;
}
bool from_string(const std::string& name, Activation& a) {
  return value_of(kActivations, name, a);
}
bool from_string(const std::string& name, DType& d) {
  return value_of(kDTypes, name, d);
}
bool from_string(const std::string& name, FeatureKind& f) {
  return value_of(kFeatures, name, f);
}
bool from_string(const std::string& name, Denormals& d) {
  return value_of(kDenormals, name, d);
}
std::string features_dim_error(const ModelSpec& m, int64_t dim) {
  const FeatureRules rules = rules_of(m.features);
  if (rules.atoms && (dim % 3 != 0 || dim < 6))
    return std::string(to_string(m.features)) +
           " needs x to hold the Cartesian coordinates of 2 or more atoms (n = 3a), but n = " + std::to_string(dim);
  if (rules.periods && static_cast<int64_t>(m.periods.size()) != dim)
    return "has " + std::to_string(m.periods.size()) + " entries, but x has n = " + std::to_string(dim) +
           " components (one period per component, 0 where it is not periodic)";
  return "";
}
const char* to_string(Optimizer o) {
  return name_of(kOptimizers, o);
}
const char* to_string(Schedule s) {
  return name_of(kSchedules, s);
}
const char* to_string(Target t) {
  return name_of(kTargets, t);
}
const char* to_string(Sampling s) {
  return name_of(kSamplings, s);
}
const char* to_string(Device d) {
  return name_of(kDevices, d);
}
const char* to_string(Denormals d) {
  return name_of(kDenormals, d);
}

}  // namespace gradfit::config
