// Expanding a sweep: grid (cartesian product) × zip (paired lists) × random samples × repeats, every run parsed
// and validated like a single run, with its value nodes keeping their place in the file for error messages.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>

#include "config/config.h"
#include "config/section.h"

namespace gradfit::config {
namespace {

// One swept key and the values it takes.
struct Axis {
  std::string key;  // dotted, e.g. "optimizer.lr"
  std::vector<YAML::Node> values;
};

// A random distribution for one key.
struct Distribution {
  std::string key;
  std::string kind;  // uniform | loguniform | int | choice
  double low = 0, high = 0;
  YAML::Node choices;
};

uint64_t bounded(std::mt19937_64& rng, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * bound) >> 64);
}
double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

class SweepReader {
 public:
  SweepReader(const YAML::Node& node, const std::string& file)
      : file_(file), sweep_(file, node, "sweep", section_keys("sweep")), valid_(settable_keys(false)) {}

  // Checks that `key_node` names a key a sweep may vary, once.
  std::string swept_key(const YAML::Node& key_node, const std::string& where) {
    const auto key = key_node.as<std::string>();
    if (std::find(valid_.begin(), valid_.end(), key) == valid_.end()) {
      const std::string near = nearest(key, valid_);
      fail_at(file_, key_node, where + "." + key,
              near.empty() ? "is not a key a sweep can vary (data.*, model.*, optimizer.*, train.*)"
                           : "unknown key; did you mean '" + near + "'?");
    }
    if (!seen_.insert(key).second) fail_at(file_, key_node, where + "." + key, "is swept more than once");
    return key;
  }

  std::vector<Axis> lists(const std::string& name) {
    std::vector<Axis> axes;
    if (!sweep_.has(name)) return axes;
    const YAML::Node node = sweep_.child(name);
    if (!node.IsMap() || node.size() == 0)
      fail_at(file_, node, "sweep." + name, "must map dotted keys to lists of values");
    for (const auto& item : node) {
      Axis axis{swept_key(item.first, "sweep." + name), {}};
      if (!item.second.IsSequence() || item.second.size() == 0)
        fail_at(file_, item.second, "sweep." + name + "." + axis.key, "must be a non-empty list of values");
      for (const auto& v : item.second) axis.values.push_back(v);
      axes.push_back(std::move(axis));
    }
    return axes;
  }

  std::vector<Distribution> distributions() {
    std::vector<Distribution> out;
    if (!sweep_.has("random")) return out;
    const YAML::Node node = sweep_.child("random");
    if (!node.IsMap() || node.size() == 0)
      fail_at(file_, node, "sweep.random", "must map dotted keys to distributions, e.g. {loguniform: [1e-4, 1e-1]}");
    for (const auto& item : node) {
      Distribution d;
      d.key = swept_key(item.first, "sweep.random");
      const std::string where = "sweep.random." + d.key;
      const YAML::Node spec = item.second;
      if (!spec.IsMap() || spec.size() != 1)
        fail_at(file_, spec, where,
                "must be one of {uniform: [a, b]}, {loguniform: [a, b]}, {int: [a, b]}, {choice: [...]}");
      d.kind = spec.begin()->first.as<std::string>();
      const YAML::Node args = spec.begin()->second;
      const std::vector<std::string> kinds{"uniform", "loguniform", "int", "choice"};
      if (std::find(kinds.begin(), kinds.end(), d.kind) == kinds.end()) {
        const std::string near = nearest(d.kind, kinds);
        fail_at(file_, spec.begin()->first, where,
                "unknown distribution '" + d.kind + "'" +
                    (near.empty() ? " (uniform, loguniform, int, choice)" : "; did you mean '" + near + "'?"));
      }
      if (d.kind == "choice") {
        if (!args.IsSequence() || args.size() == 0) fail_at(file_, args, where, "choice needs a non-empty list");
        d.choices = args;
      } else {
        std::vector<double> bounds;
        try {
          bounds = args.as<std::vector<double>>();
        } catch (const YAML::Exception&) {
        }
        if (bounds.size() != 2) fail_at(file_, args, where, d.kind + " needs a list [low, high] of two numbers");
        d.low = bounds[0], d.high = bounds[1];
        if (!(d.low < d.high) && !(d.kind == "int" && d.low == d.high))
          fail_at(file_, args, where, d.kind + " needs low < high");
        if (d.kind == "loguniform" && d.low <= 0) fail_at(file_, args, where, "loguniform needs low > 0");
        if (d.kind == "int" && (d.low != std::floor(d.low) || d.high != std::floor(d.high)))
          fail_at(file_, args, where, "int needs integer bounds");
      }
      out.push_back(std::move(d));
    }
    return out;
  }

  const Section& section() const { return sweep_; }

 private:
  std::string file_;
  Section sweep_;
  std::vector<std::string> valid_;
  std::set<std::string> seen_;
};

// Display text of a value: scalars as written, lists of scalars joined by 'x' ([10, 10] -> 10x10).
std::string value_text(const YAML::Node& v) {
  if (v.IsScalar()) return v.Scalar();
  std::string out;
  if (v.IsSequence())
    for (const auto& item : v) out += (out.empty() ? "" : "x") + value_text(item);
  return out.empty() ? "?" : out;
}

YAML::Node draw(const Distribution& d, std::mt19937_64& rng) {
  const double u = uniform01(rng);
  if (d.kind == "uniform") return YAML::Node(d.low + (d.high - d.low) * u);
  if (d.kind == "loguniform") return YAML::Node(std::exp(std::log(d.low) + (std::log(d.high) - std::log(d.low)) * u));
  if (d.kind == "int") {
    const auto low = static_cast<int64_t>(d.low);
    return YAML::Node(low + static_cast<int64_t>(bounded(rng, static_cast<uint64_t>(d.high - d.low) + 1)));
  }
  return d.choices[bounded(rng, d.choices.size())];
}

// Short display text for a drawn number: 4 significant digits.
std::string drawn_text(const YAML::Node& v, const Distribution& d) {
  if (d.kind != "uniform" && d.kind != "loguniform") return value_text(v);
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", v.as<double>());
  return text;
}

void set_key(YAML::Node& doc, const std::string& dotted, const YAML::Node& value) {
  const auto dot = dotted.find('.');
  const std::string section = dotted.substr(0, dot);
  if (!doc[section] || !doc[section].IsMap()) doc[section] = YAML::Node(YAML::NodeType::Map);
  doc[section][dotted.substr(dot + 1)] = value;
}

}  // namespace

std::vector<RunSpec> expand_sweep(const YAML::Node& base, const YAML::Node& sweep_node, const std::string& file) {
  SweepReader reader(sweep_node, file);
  const Section& sweep = reader.section();
  const std::vector<Axis> grid = reader.lists("grid");
  const std::vector<Axis> zip = reader.lists("zip");
  const std::vector<Distribution> random = reader.distributions();
  const auto repeats = sweep.get<int64_t>("repeats", 1);
  sweep.check(repeats >= 1, "repeats", "must be >= 1", repeats);
  const auto samples = sweep.get<int64_t>("samples", random.empty() ? 1 : 0);
  if (!random.empty()) sweep.check(samples >= 1, "samples", "must be >= 1 with sweep.random", samples);
  if (random.empty()) sweep.check(!sweep.has("samples"), "samples", "applies to sweep.random only", samples);
  const auto seed = sweep.get<uint64_t>("seed", 0);
  if (grid.empty() && zip.empty() && random.empty() && !sweep.has("repeats"))
    sweep.fail(sweep.node(), "needs at least one of grid, zip, random or repeats");
  size_t zip_length = zip.empty() ? 1 : zip.front().values.size();
  for (const auto& axis : zip)
    if (axis.values.size() != zip_length)
      fail_at(file, sweep.child("zip")[axis.key], "sweep.zip." + axis.key,
              "has " + std::to_string(axis.values.size()) + " values but sweep.zip." + zip.front().key + " has " +
                  std::to_string(zip_length) + "; zipped lists must be equally long");

  // Display names: the last part of each dotted key, unless two swept keys share it.
  std::map<std::string, int> short_count;
  std::vector<std::string> keys;
  for (const auto& a : grid) keys.push_back(a.key);
  for (const auto& a : zip) keys.push_back(a.key);
  for (const auto& d : random) keys.push_back(d.key);
  const auto short_of = [](const std::string& k) { return k.substr(k.find('.') + 1); };
  for (const auto& k : keys) ++short_count[short_of(k)];
  const auto label = [&](const std::string& k) { return short_count[short_of(k)] > 1 ? k : short_of(k); };

  int64_t grid_points = 1;
  for (const auto& a : grid) grid_points *= static_cast<int64_t>(a.values.size());
  sweep.check(grid_points * static_cast<int64_t>(zip_length) * samples * repeats <= 100000, "grid",
              "expands to more than 100000 runs", grid_points * static_cast<int64_t>(zip_length) * samples * repeats);

  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  std::mt19937_64 rng(seq);

  std::vector<RunSpec> runs;
  std::vector<size_t> digit(grid.size(), 0);  // odometer over the grid, last key fastest
  for (int64_t g = 0; g < grid_points; ++g) {
    for (size_t z = 0; z < zip_length; ++z) {
      for (int64_t s = 0; s < samples; ++s) {
        YAML::Node point = YAML::Clone(base);
        std::vector<std::pair<std::string, std::string>> params;
        for (size_t a = 0; a < grid.size(); ++a) {
          set_key(point, grid[a].key, grid[a].values[digit[a]]);
          params.emplace_back(grid[a].key, value_text(grid[a].values[digit[a]]));
        }
        for (const auto& axis : zip) {
          set_key(point, axis.key, axis.values[z]);
          params.emplace_back(axis.key, value_text(axis.values[z]));
        }
        for (const auto& d : random) {
          const YAML::Node value = draw(d, rng);
          set_key(point, d.key, value);
          params.emplace_back(d.key, drawn_text(value, d));
        }
        for (int64_t r = 0; r < repeats; ++r) {
          RunSpec run = parse_run(point, file);
          run.params = params;
          if (repeats > 1) {
            run.train.seed += static_cast<uint64_t>(r);
            run.params.emplace_back("repeat", std::to_string(r));
          }
          for (const auto& [key, text] : run.params)
            run.name += (run.name.empty() ? "" : ",") + (key == "repeat" ? key : label(key)) + "=" + text;
          std::replace(run.name.begin(), run.name.end(), '/', '_');  // names become HDF5 group names
          run.id = stable_id(run);
          runs.push_back(std::move(run));
        }
      }
    }
    for (size_t a = grid.size(); a-- > 0;) {
      if (++digit[a] < grid[a].values.size()) break;
      digit[a] = 0;
    }
  }

  // Identical runs would overwrite each other's results; equal names get the id appended.
  std::map<std::string, const RunSpec*> by_id;
  std::map<std::string, int> name_count;
  for (const auto& run : runs) {
    const auto [it, fresh] = by_id.emplace(run.id, &run);
    if (!fresh)
      sweep.fail(sweep.node(),
                 "runs '" + it->second->name + "' and '" + run.name + "' are identical (a value listed twice?)");
    ++name_count[run.name];
  }
  for (auto& run : runs)
    if (name_count[run.name] > 1) run.name += "#" + run.id;
  return runs;
}

}  // namespace gradfit::config
