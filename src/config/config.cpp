#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "common/error.h"

namespace gradfit::config {
namespace {

// Edit distance, to suggest the nearest valid key for a typo.
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

template <class Enum, size_t K>
using NameTable = std::array<std::pair<const char*, Enum>, K>;

constexpr NameTable<Activation, 5> kActivations{{{"relu", Activation::relu},
                                                 {"tanh", Activation::tanh},
                                                 {"softplus", Activation::softplus},
                                                 {"silu", Activation::silu},
                                                 {"gelu", Activation::gelu}}};
constexpr NameTable<DType, 2> kDTypes{{{"float32", DType::float32}, {"float64", DType::float64}}};
constexpr NameTable<Optimizer, 2> kOptimizers{{{"adam", Optimizer::adam}, {"sgd", Optimizer::sgd}}};
constexpr NameTable<Target, 4> kTargets{{{"quadratic", Target::quadratic},
                                         {"rosenbrock", Target::rosenbrock},
                                         {"gaussian_wells", Target::gaussian_wells},
                                         {"file", Target::file}}};
constexpr NameTable<Device, 3> kDevices{{{"auto", Device::auto_select}, {"cpu", Device::cpu}, {"cuda", Device::cuda}}};
constexpr NameTable<Sampling, 3> kSamplings{
    {{"grid", Sampling::grid}, {"uniform", Sampling::uniform}, {"normal", Sampling::normal}}};

template <class Enum, size_t K>
const char* name_of(const NameTable<Enum, K>& table, Enum value) {
  for (const auto& [name, v] : table)
    if (v == value) return name;
  return "?";
}

// A YAML mapping with a known set of keys. Reading a key checks its type and records where it came from, so
// every error can say FILE:LINE:COL and the dotted key.
class Section {
 public:
  Section(const std::string& file, const YAML::Node& node, std::string prefix, std::vector<std::string> allowed)
      : file_(file), node_(node), prefix_(std::move(prefix)), allowed_(std::move(allowed)) {
    if (!node_.IsMap()) fail(node_, prefix_.empty() ? "the file must be a YAML mapping" : "must be a mapping");
    for (const auto& item : node_) {
      const auto key = item.first.as<std::string>();
      if (std::find(allowed_.begin(), allowed_.end(), key) != allowed_.end()) continue;
      std::string message = "unknown key";
      const std::string* best = nullptr;
      size_t best_distance = std::numeric_limits<size_t>::max();
      for (const auto& candidate : allowed_) {
        const size_t d = edit_distance(key, candidate);
        if (d < best_distance) best_distance = d, best = &candidate;
      }
      if (best && best_distance <= std::max<size_t>(2, key.size() / 3))
        message += "; did you mean '" + dotted(*best) + "'?";
      else
        message += " (valid keys here: " + join(allowed_) + ")";
      fail(item.first, message, key);
    }
  }

  bool has(const std::string& key) const { return static_cast<bool>(node_[key]); }

  YAML::Node child(const std::string& key) const { return node_[key]; }

  template <class T>
  T get(const std::string& key, const T& fallback) const {
    const YAML::Node value = node_[key];
    if (!value) return fallback;
    try {
      return value.as<T>();
    } catch (const YAML::Exception&) {
      fail(value, "expected " + type_name<T>() + ", got '" + text_of(value) + "'", key);
    }
  }

  template <class T>
  T require(const std::string& key) const {
    if (!has(key)) fail(node_, "missing required key", key);
    return get<T>(key, T{});
  }

  template <class Enum, size_t K>
  Enum get_enum(const std::string& key, const NameTable<Enum, K>& table, Enum fallback) const {
    const YAML::Node value = node_[key];
    if (!value) return fallback;
    const auto text = get<std::string>(key, "");
    std::vector<std::string> names;
    for (const auto& [name, v] : table) {
      if (text == name) return v;
      names.emplace_back(name);
    }
    fail(value, "'" + text + "' is not one of " + join(names), key);
  }

  template <class T>
  void check(bool ok, const std::string& key, const std::string& requirement, const T& got) const {
    if (ok) return;
    std::ostringstream os;
    os << requirement << " (got " << got << ")";
    fail(node_[key] ? node_[key] : node_, os.str(), key);
  }

  [[noreturn]] void fail(const YAML::Node& at, const std::string& message, const std::string& key = "") const {
    std::ostringstream os;
    os << file_;
    const YAML::Mark mark = at.Mark();
    if (!mark.is_null()) os << ":" << mark.line + 1 << ":" << mark.column + 1;
    os << ": ";
    if (!key.empty()) os << "key '" << dotted(key) << "': ";
    os << message;
    throw ConfigError(os.str());
  }

  std::string dotted(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

 private:
  static std::string join(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
  }
  static std::string text_of(const YAML::Node& node) {
    if (node.IsScalar()) return node.Scalar();
    return node.IsSequence() ? "a list" : "a mapping";
  }
  template <class T>
  static std::string type_name() {
    if constexpr (std::is_same_v<T, std::string>) return "a string";
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_integral_v<T>) return "an integer";
    if constexpr (std::is_floating_point_v<T>) return "a number";
    if constexpr (std::is_same_v<T, std::vector<int64_t>>) return "a list of integers";
    if constexpr (std::is_same_v<T, std::vector<double>>) return "a list of numbers";
    if constexpr (std::is_same_v<T, std::vector<std::vector<double>>>) return "a list of lists of numbers";
    return "a value";
  }

  const std::string& file_;
  YAML::Node node_;
  std::string prefix_;
  std::vector<std::string> allowed_;
};

DataSpec parse_data(const Section& s, const std::string& yaml_path) {
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

  s.check(d.low < d.high, "high", "must be greater than data.low", d.high);
  s.check(d.stddev > 0, "stddev", "must be > 0", d.stddev);
  s.check(d.points_per_axis >= 1, "points_per_axis", "must be >= 1", d.points_per_axis);
  s.check(d.samples >= 1, "samples", "must be >= 1", d.samples);
  s.check(d.wells >= 1, "wells", "must be >= 1", d.wells);
  s.check(d.well_width > 0, "well_width", "must be > 0", d.well_width);

  switch (d.target) {
    case Target::file: {
      d.path = s.require<std::string>("path");
      const std::filesystem::path p(d.path);
      if (p.is_relative()) d.path = (std::filesystem::path(yaml_path).parent_path() / p).lexically_normal().string();
      break;
    }
    case Target::quadratic: {
      const auto rows = s.require<std::vector<std::vector<double>>>("P");
      const auto n = static_cast<int64_t>(rows.size());
      s.check(n >= 1, "P", "must be a non-empty square matrix", "[]");
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
  if (d.target != Target::file && d.sampling == Sampling::grid) {
    double total = 1.0;
    for (int64_t i = 0; i < d.dim; ++i) total *= static_cast<double>(d.points_per_axis);
    s.check(total <= 1e9, "points_per_axis", "gives more than 1e9 grid points in " + std::to_string(d.dim) + "-D",
            d.points_per_axis);
  }
  return d;
}

ModelSpec parse_model(const Section& s) {
  ModelSpec m;
  m.widths = s.get<std::vector<int64_t>>("widths", m.widths);
  m.activation = s.get_enum("activation", kActivations, m.activation);
  m.dtype = s.get_enum("dtype", kDTypes, m.dtype);
  for (const int64_t w : m.widths) s.check(w >= 1, "widths", "every width must be >= 1", w);
  return m;
}

TrainSpec parse_train(const Section& s) {
  TrainSpec t;
  t.optimizer = s.get_enum("optimizer", kOptimizers, t.optimizer);
  t.lr = s.get<double>("lr", t.lr);
  t.momentum = s.get<double>("momentum", t.momentum);
  t.epochs = s.get<int64_t>("epochs", t.epochs);
  t.batch_size = s.get<int64_t>("batch_size", t.batch_size);
  t.value_weight = s.get<double>("value_weight", t.value_weight);
  t.seed = s.get<uint64_t>("seed", t.seed);
  t.log_every = s.get<int64_t>("log_every", t.log_every);
  s.check(t.lr > 0, "lr", "must be > 0", t.lr);
  s.check(t.momentum >= 0 && t.momentum < 1, "momentum", "must be in [0, 1)", t.momentum);
  s.check(t.optimizer == Optimizer::sgd || !s.has("momentum"), "momentum", "applies to optimizer sgd only", t.momentum);
  s.check(t.epochs >= 1, "epochs", "must be >= 1", t.epochs);
  s.check(t.batch_size >= 0, "batch_size", "must be >= 0 (0 means full batch)", t.batch_size);
  s.check(t.value_weight >= 0, "value_weight", "must be >= 0", t.value_weight);
  s.check(t.log_every >= 0, "log_every", "must be >= 0", t.log_every);
  return t;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": invalid YAML: " + e.msg);
  }
  if (!root || root.IsNull()) throw ConfigError(path + ": the file is empty");

  Config config;
  config.path = path;
  config.yaml_text = yaml_text;
  const Section top(path, root, "", {"name", "device", "data", "model", "train"});
  config.run.name = top.get<std::string>("name", std::filesystem::path(path).stem().string());
  config.device = top.get_enum("device", kDevices, config.device);
  if (!top.has("data")) top.fail(root, "missing required section", "data");
  config.run.data = parse_data(Section(path, top.child("data"), "data",
                                       {"target", "path", "sampling", "dim", "points_per_axis", "samples", "low",
                                        "high", "stddev", "P", "wells", "well_width", "seed"}),
                               path);
  if (top.has("model"))
    config.run.model = parse_model(Section(path, top.child("model"), "model", {"widths", "activation", "dtype"}));
  if (top.has("train"))
    config.run.train = parse_train(
        Section(path, top.child("train"), "train",
                {"optimizer", "lr", "momentum", "epochs", "batch_size", "value_weight", "seed", "log_every"}));
  auto& train = config.run.train;
  if (train.log_every == 0) {  // about ten lines: epochs / 10 rounded to one significant digit
    const double tenth = std::max(1.0, static_cast<double>(train.epochs) / 10.0);
    const double unit = std::pow(10.0, std::floor(std::log10(tenth)));
    train.log_every = static_cast<int64_t>(unit * std::round(tenth / unit));
  }
  return config;
}

Config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open the sweep file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

const char* to_string(Activation a) {
  return name_of(kActivations, a);
}
const char* to_string(DType d) {
  return name_of(kDTypes, d);
}
const char* to_string(Optimizer o) {
  return name_of(kOptimizers, o);
}
const char* to_string(Target t) {
  return name_of(kTargets, t);
}
const char* to_string(Sampling s) {
  return name_of(kSamplings, s);
}

}  // namespace gradfit::config
