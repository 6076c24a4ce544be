// Expanding a sweep: grid (cartesian product) × zip (paired lists) × random samples × repeats, every run parsed
// and validated like a single run, with its value nodes keeping their place in the file for error messages.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

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
    if (!key_node.IsScalar()) fail_at(file_, key_node, where, "a key must be a dotted name, not a list or mapping");
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
      d.kind = spec.begin()->first.IsScalar() ? spec.begin()->first.Scalar() : "?";
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

// Display text of a value: scalars as written, lists of scalars joined by 'x' ([10, 10] -> 10x10), mappings as
// key:value joined by '+' ({H: [6], O: [8, 4]} -> H:6+O:8x4).
std::string value_text(const YAML::Node& v) {
  if (v.IsScalar()) return v.Scalar();
  std::string out;
  if (v.IsSequence())
    for (const auto& item : v) out += (out.empty() ? "" : "x") + value_text(item);
  if (v.IsMap())
    for (const auto& item : v) out += (out.empty() ? "" : "+") + value_text(item.first) + ":" + value_text(item.second);
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

// What a sweep varies and how often, read from the file and checked.
struct SweepPlan {
  std::vector<Axis> grid;
  std::vector<Axis> zip;
  std::vector<Distribution> random;
  size_t zip_length = 1;    // the length shared by the zipped lists; 1 without zip
  int64_t grid_points = 1;  // the product of the grid's list lengths
  int64_t samples = 1;      // random draws per grid and zip point
  int64_t repeats = 1;      // runs per drawn point, repeat r with train.seed + r
  uint64_t seed = 0;        // of the random draws
};

// A sweep expanding to more runs than this is almost surely a mistake in the file.
constexpr int64_t kMaxRuns = 100000;

// The length shared by the zipped lists (1 without zip); fails at the first list of another length.
size_t zip_length(const std::vector<Axis>& zip, const Section& sweep) {
  const size_t length = zip.empty() ? 1 : zip.front().values.size();
  for (const auto& axis : zip)
    if (axis.values.size() != length)
      fail_at(sweep.file(), sweep.child("zip")[axis.key], "sweep.zip." + axis.key,
              "has " + std::to_string(axis.values.size()) + " values but sweep.zip." + zip.front().key + " has " +
                  std::to_string(length) + "; zipped lists must be equally long");
  return length;
}

// grid points x zip length x samples x repeats, or nothing when the product does not fit in int64 (repeats or
// samples near 2^63, or many long lists): computed naively, it would wrap around to a small number and pass the limit.
std::optional<int64_t> run_count(const SweepPlan& plan) {
  std::vector<int64_t> factors{static_cast<int64_t>(plan.zip_length), plan.samples, plan.repeats};
  for (const auto& axis : plan.grid) factors.push_back(static_cast<int64_t>(axis.values.size()));
  int64_t count = 1;
  for (const int64_t factor : factors)
    if (__builtin_mul_overflow(count, factor, &count)) return std::nullopt;
  return count;
}

// Fails unless the sweep expands to at most kMaxRuns runs; called before any run is made.
void check_run_count(const SweepPlan& plan, const Section& sweep) {
  const std::string requirement = "expands to more than " + std::to_string(kMaxRuns) + " runs";
  const std::optional<int64_t> count = run_count(plan);
  if (count)
    sweep.check(*count <= kMaxRuns, "grid", requirement, *count);
  else
    sweep.check(false, "grid", requirement, "more than " + std::to_string(std::numeric_limits<int64_t>::max()));
}

// Reads the sweep's lists, distributions and counts, failing at the first invalid one in this order.
SweepPlan read_plan(SweepReader& reader) {
  const Section& sweep = reader.section();
  SweepPlan plan;
  plan.grid = reader.lists("grid");
  plan.zip = reader.lists("zip");
  plan.random = reader.distributions();
  plan.repeats = sweep.get<int64_t>("repeats", 1);
  sweep.check(plan.repeats >= 1, "repeats", "must be >= 1", plan.repeats);
  plan.samples = sweep.get<int64_t>("samples", plan.random.empty() ? 1 : 0);
  if (!plan.random.empty()) sweep.check(plan.samples >= 1, "samples", "must be >= 1 with sweep.random", plan.samples);
  if (plan.random.empty()) sweep.check(!sweep.has("samples"), "samples", "applies to sweep.random only", plan.samples);
  plan.seed = sweep.get<uint64_t>("seed", 0);
  if (plan.grid.empty() && plan.zip.empty() && plan.random.empty() && !sweep.has("repeats"))
    sweep.fail(sweep.node(), "needs at least one of grid, zip, random or repeats");
  plan.zip_length = zip_length(plan.zip, sweep);
  check_run_count(plan, sweep);
  // Every factor is >= 1 and the whole product is at most kMaxRuns, so this cannot overflow.
  for (const auto& axis : plan.grid) plan.grid_points *= static_cast<int64_t>(axis.values.size());
  return plan;
}

// Display names of the swept keys: the last part of each dotted key, unless two swept keys share it.
std::map<std::string, std::string> display_labels(const SweepPlan& plan) {
  std::vector<std::string> keys;
  for (const auto& a : plan.grid) keys.push_back(a.key);
  for (const auto& a : plan.zip) keys.push_back(a.key);
  for (const auto& d : plan.random) keys.push_back(d.key);
  const auto short_of = [](const std::string& k) { return k.substr(k.find('.') + 1); };
  std::map<std::string, int> short_count;
  for (const auto& k : keys) ++short_count[short_of(k)];
  std::map<std::string, std::string> labels;
  for (const auto& k : keys) labels[k] = short_count[short_of(k)] > 1 ? k : short_of(k);
  return labels;
}

using Params = std::vector<std::pair<std::string, std::string>>;

// One point of the sweep: the values of its swept keys, read in place of the base document's, and their display
// texts in sweep order.
struct Point {
  SweptValues values;
  Params params;
};

// The point at grid position `digit` and zip index `z`, with fresh draws from `rng` for the random keys.
Point sweep_point(const SweepPlan& plan, const std::vector<size_t>& digit, size_t z, std::mt19937_64& rng) {
  Point point;
  for (size_t a = 0; a < plan.grid.size(); ++a) {
    point.values[plan.grid[a].key] = plan.grid[a].values[digit[a]];
    point.params.emplace_back(plan.grid[a].key, value_text(plan.grid[a].values[digit[a]]));
  }
  for (const auto& axis : plan.zip) {
    point.values[axis.key] = axis.values[z];
    point.params.emplace_back(axis.key, value_text(axis.values[z]));
  }
  for (const auto& d : plan.random) {
    const YAML::Node value = draw(d, rng);
    point.values[d.key] = value;
    point.params.emplace_back(d.key, drawn_text(value, d));
  }
  return point;
}

// "lr=0.1,repeat=0": each swept key's label and value text; '/' becomes '_' since names become HDF5 group names.
std::string run_name(const Params& params, const std::map<std::string, std::string>& labels) {
  std::string name;
  for (const auto& [key, text] : params)
    name += (name.empty() ? "" : ",") + (key == "repeat" ? key : labels.at(key)) + "=" + text;
  std::replace(name.begin(), name.end(), '/', '_');
  return name;
}

// Appends the runs of one point, one per repeat, each parsed and validated; repeat r trains with train.seed + r.
void add_repeats(const YAML::Node& base, const Point& point, const SweepPlan& plan,
                 const std::map<std::string, std::string>& labels, const std::string& file,
                 std::vector<RunSpec>& runs) {
  for (int64_t r = 0; r < plan.repeats; ++r) {
    RunSpec run = parse_run(base, file, point.values);
    run.params = point.params;
    if (plan.repeats > 1) {
      run.train.seed += static_cast<uint64_t>(r);
      run.params.emplace_back("repeat", std::to_string(r));
    }
    run.name = run_name(run.params, labels);
    run.id = stable_id(run);
    runs.push_back(std::move(run));
  }
}

// Advances the odometer over the grid by one point, last key fastest.
void next_grid_point(std::vector<size_t>& digit, const std::vector<Axis>& grid) {
  for (size_t a = grid.size(); a-- > 0;) {
    if (++digit[a] < grid[a].values.size()) break;
    digit[a] = 0;
  }
}

// Identical runs would overwrite each other's results, so they are an error; runs that differ but share a name
// (values with the same display text) get the id appended.
void make_names_unique(std::vector<RunSpec>& runs, const Section& sweep) {
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
}

}  // namespace

std::vector<RunSpec> expand_sweep(const YAML::Node& base, const YAML::Node& sweep_node, const std::string& file) {
  SweepReader reader(sweep_node, file);
  const SweepPlan plan = read_plan(reader);
  const std::map<std::string, std::string> labels = display_labels(plan);
  std::seed_seq seq{static_cast<uint32_t>(plan.seed), static_cast<uint32_t>(plan.seed >> 32)};
  std::mt19937_64 rng(seq);

  std::vector<RunSpec> runs;
  std::vector<size_t> digit(plan.grid.size(), 0);  // odometer over the grid
  for (int64_t g = 0; g < plan.grid_points; ++g) {
    for (size_t z = 0; z < plan.zip_length; ++z)
      for (int64_t s = 0; s < plan.samples; ++s)
        add_repeats(base, sweep_point(plan, digit, z, rng), plan, labels, file, runs);
    next_grid_point(digit, plan.grid);
  }
  make_names_unique(runs, reader.section());
  return runs;
}

}  // namespace gradfit::config
