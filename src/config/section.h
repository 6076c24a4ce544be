#pragma once
// Internal to config/: reading YAML mappings with checked keys and types, and errors that carry FILE:LINE:COL.
#include <yaml-cpp/yaml.h>

#include <array>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/error.h"

namespace gradfit::config {

template <class Enum, size_t K>
using NameTable = std::array<std::pair<const char*, Enum>, K>;

// "a, b, c"
std::string join(const std::vector<std::string>& names);
// The candidate closest to `key` by edit distance, or "" when none is close.
std::string nearest(const std::string& key, const std::vector<std::string>& candidates);

// A ConfigError "FILE:LINE:COL: key 'dotted': message" at `at` (LINE:COL left out when the node has no mark).
[[noreturn]] void fail_at(const std::string& file, const YAML::Node& at, const std::string& dotted_key,
                          const std::string& message);

// Values a sweep point sets, by dotted key ("optimizer.lr"): read in place of the file's, so that both keep their
// own place in the file for error messages (a copy of the document would lose every mark).
using SweptValues = std::map<std::string, YAML::Node>;

// The bounds of every document: nesting (the deepest key a sweep file needs, a value of sweep.grid.data.P, sits
// 5 levels down) and nodes visited, aliases counted at each use.
constexpr int kMaxYamlDepth = 64;
constexpr int64_t kMaxYamlNodes = 1000000;
// Checks a document before anything else walks it: fails at an alias inside the node it names (a cycle), at
// nesting deeper than kMaxYamlDepth, past kMaxYamlNodes nodes, and at the second of two equal keys in any mapping
// (naming both lines), each with FILE:LINE:COL and the dotted key; `prefix` dots the keys.
void check_tree(const std::string& file, const YAML::Node& node, const std::string& prefix = "");

// A YAML mapping with a known set of keys. Reading a key checks its type, so every error can say FILE:LINE:COL
// and the dotted key. `swept` (by dotted key) overrides the mapping's values for a sweep point.
class Section {
 public:
  Section(const std::string& file, const YAML::Node& node, std::string prefix, const std::vector<std::string>& allowed,
          const SweptValues& swept = {});

  bool has(const std::string& key) const { return static_cast<bool>(child(key)); }
  YAML::Node child(const std::string& key) const {
    const auto it = swept_.find(dotted(key));
    return it != swept_.end() ? it->second : node_[key];
  }
  const YAML::Node& node() const { return node_; }
  const std::string& file() const { return file_; }

  template <class T>
  T get(const std::string& key, const T& fallback) const {
    const YAML::Node value = child(key);
    if (!value) return fallback;
    try {
      return value.as<T>();
    } catch (const YAML::Exception&) {  // BadConversion, also of a list's item
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
    const YAML::Node value = child(key);
    if (!value) return fallback;
    const auto text = get<std::string>(key, "");
    std::vector<std::string> names;
    for (const auto& [name, v] : table) {
      if (text == name) return v;
      names.emplace_back(name);
    }
    const std::string near = nearest(text, names);
    fail(value, "'" + text + "' is not one of " + join(names) + (near.empty() ? "" : "; did you mean '" + near + "'?"),
         key);
  }

  // Fails with "requirement (got value)" at the key's value unless `ok`.
  template <class T>
  void check(bool ok, const std::string& key, const std::string& requirement, const T& got) const {
    if (ok) return;
    std::ostringstream os;
    os << requirement << " (got " << got << ")";
    fail(has(key) ? child(key) : node_, os.str(), key);
  }

  [[noreturn]] void fail(const YAML::Node& at, const std::string& message, const std::string& key = "") const {
    fail_at(file_, at, key.empty() ? prefix_ : dotted(key), message);
  }

  std::string dotted(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

  static std::string text_of(const YAML::Node& node) {
    if (node.IsScalar()) return node.Scalar();
    return node.IsSequence() ? "a list" : "a mapping";
  }

 private:
  template <class T>
  static std::string type_name() {
    if constexpr (std::is_same_v<T, std::string>) return "a string";
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_integral_v<T>) return "an integer";
    if constexpr (std::is_floating_point_v<T>) return "a number";
    if constexpr (std::is_same_v<T, std::vector<int64_t>>) return "a list of integers";
    if constexpr (std::is_same_v<T, std::vector<double>>) return "a list of numbers";
    if constexpr (std::is_same_v<T, std::vector<std::vector<double>>>) return "a list of lists of numbers";
    if constexpr (std::is_same_v<T, std::map<std::string, std::vector<int64_t>>>)
      return "a mapping of element symbols to lists of integers";
    return "a value";
  }

  std::string file_;
  YAML::Node node_;
  std::string prefix_;
  SweptValues swept_;
};

// The keys of each section of a sweep file.
const std::vector<std::string>& top_level_keys();
const std::vector<std::string>& section_keys(const std::string& section);  // data, model, optimizer, train, ...
// Every key a sweep may vary or --set may override, dotted ("optimizer.lr").
std::vector<std::string> settable_keys(bool include_top_level);

}  // namespace gradfit::config

namespace gradfit::config {

struct RunSpec;
// 12 hex digits hashing canonical_text(run); config.cpp.
std::string stable_id(const RunSpec& run);
// Parses one run from a whole (base or expanded) document; config.cpp.
RunSpec parse_run(const YAML::Node& root, const std::string& file, const SweptValues& swept = {});
// Expands the `sweep:` mapping of `root` into runs, each parsed and validated, with ids and names; sweep.cpp.
std::vector<RunSpec> expand_sweep(const YAML::Node& root, const YAML::Node& sweep, const std::string& file);
struct PruneSpec;
// Reads sweep.prune (none when absent) and checks it against the expanded runs; sweep.cpp.
PruneSpec parse_prune(const YAML::Node& sweep, const std::string& file, const std::vector<RunSpec>& runs);

}  // namespace gradfit::config
