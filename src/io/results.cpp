#include "io/results.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <functional>
#include <limits>

#include "common/elements.h"
#include "common/error.h"
#include "gradfit/version.h"
#include "io/h5.h"
#include "model/mlp.h"
#include "records/records.h"

namespace gradfit::io {
namespace {

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// The run's outcome: status, final metrics (of the weights in model/), best epoch and losses.
void write_outcome(const Location& group, const records::TrainResult& result) {
  const auto& h = result.history;
  group.write_attribute("status", std::string(records::to_string(result.status)));
  group.write_attribute("epochs_run", static_cast<int64_t>(h.size()));
  if (h.empty()) return;
  group.write_attribute("final_loss", result.final.train_loss);
  group.write_attribute("final_rel_grad_error", result.final.rel_grad_error);
  group.write_attribute("final_val_loss", result.final.val_loss);
  group.write_attribute("best_epoch", result.best_epoch);
  double best_val = std::numeric_limits<double>::quiet_NaN();
  for (const auto& r : h)
    if (std::isfinite(r.val_loss) && !(best_val <= r.val_loss)) best_val = r.val_loss;
  group.write_attribute("best_val_loss", best_val);
  group.write_attribute("best_loss", std::min_element(h.begin(), h.end(), [](const auto& a, const auto& b) {
                                       return a.train_loss < b.train_loss;
                                     })->train_loss);
}

// model.features, and what its kind takes: periodic's periods, atom_centered's descriptor parameters.
void write_features(const Location& group, const config::ModelSpec& m) {
  group.write_attribute("features", std::string(config::to_string(m.features)));
  if (!m.periods.empty()) group.write_attribute("periods", m.periods);
  if (config::features_need_elements(m))
    config::AtomCenteredSpec::visit(m.descriptor,
                                    [&](const char* key, const auto& value) { group.write_attribute(key, value); });
  for (const auto& [number, widths] : m.element_widths)  // model.element_widths: widths_H, widths_O, ...
    group.write_attribute(std::string("widths_") + element_symbol(number), widths);
}

// Every parameter of the run, and where and how it ran.
void write_settings(const Location& group, const config::RunSpec& run, const RunProvenance& context,
                    const records::TrainResult& result) {
  const auto& d = run.data;
  const auto& m = run.model;
  const auto& o = run.optimizer;
  const auto& t = run.train;
  std::string params;
  for (const auto& [key, value] : run.params) params += (params.empty() ? "" : ",") + key + "=" + value;
  group.write_attribute("id", run.id);
  group.write_attribute("name", run.name);
  group.write_attribute("params", params);
  group.write_attribute("target", std::string(config::to_string(d.target)));
  group.write_attribute("data", context.data_description);
  group.write_attribute("total_rows", context.total_rows);
  group.write_attribute("dim", context.dim);
  group.write_attribute("architecture", model::architecture(m, context.dim));
  group.write_attribute("widths", m.widths);
  group.write_attribute("activation", std::string(config::to_string(m.activation)));
  group.write_attribute("dtype", std::string(config::to_string(m.dtype)));
  write_features(group, m);
  group.write_attribute("parameter_count", result.parameter_count);
  group.write_attribute("optimizer", std::string(config::to_string(o.name)));
  group.write_attribute("lr", o.lr);
  group.write_attribute("momentum", o.momentum);
  group.write_attribute("weight_decay", o.weight_decay);
  group.write_attribute("max_grad_norm", o.max_grad_norm);
  group.write_attribute("schedule", std::string(config::to_string(o.schedule)));
  group.write_attribute("lr_final", o.lr_final);
  group.write_attribute("warmup_epochs", o.warmup_epochs);
  group.write_attribute("plateau_factor", o.plateau_factor);
  group.write_attribute("plateau_patience", o.plateau_patience);
  group.write_attribute("min_lr", o.min_lr);
  group.write_attribute("history_size", o.history_size);
  group.write_attribute("tolerance_grad", o.tolerance_grad);
  group.write_attribute("tolerance_change", o.tolerance_change);
  group.write_attribute("function_evaluations", result.function_evaluations);
  group.write_attribute("epochs", t.epochs);
  group.write_attribute("batch_size", t.batch_size);
  group.write_attribute("value_weight", t.value_weight);
  group.write_attribute("loss", std::string(config::to_string(t.loss)));
  group.write_attribute("huber_delta", t.huber_delta);  // also for mse, which ignores it
  group.write_attribute("seed", static_cast<int64_t>(t.seed));
  group.write_attribute("val_fraction", t.val_fraction);
  group.write_attribute("patience", t.patience);
  group.write_attribute("ema_decay", t.ema_decay);
  group.write_attribute("engine", std::string(config::to_string(t.engine)));
  group.write_attribute("chunk_rows", result.chunk_rows);
  group.write_attribute("init_from", t.init_from);  // empty: initialised from `seed`
  group.write_attribute("ensemble", result.ensemble);
  group.write_attribute("rung", context.rung);
  group.write_attribute("pruned_at_epoch", context.pruned_at_epoch);
  group.write_attribute("wall_seconds", result.wall_seconds);
  group.write_attribute("allreduce_seconds", result.allreduce_seconds);
  group.write_attribute("ranks", static_cast<int64_t>(context.ranks));
  group.write_attribute("threads_per_rank", static_cast<int64_t>(context.threads_per_rank));
  group.write_attribute("device", context.device);
  group.write_attribute("denormals", context.denormals);
  group.write_attribute("hosts", context.hosts);
}

// data.standardize: group standardization/ with datasets input_mean and input_scale (n), with model.features
// feature_mean and feature_scale (m), and attributes value_scale and value_offset (model/standardization.h). With
// atom_centered's element energies, the attribute element_energies (one per element, ascending atomic number).
void write_standardization(const Location& group, const model::Standardization& st) {
  group.write_attribute("standardize", static_cast<int64_t>(st.active()));
  if (!st.element_energies.empty()) group.write_attribute("element_energies", st.element_energies);
  if (!st.active()) return;
  const Location s = group.create_group("standardization");
  s.write("input_mean", st.mean);
  s.write("input_scale", st.scale);
  if (!st.feature_mean.empty()) {  // with model.features (x's μ 0 and σ 1 above)
    s.write("feature_mean", st.feature_mean);
    s.write("feature_scale", st.feature_scale);
  }
  s.write_attribute("value_scale", st.value_scale);
  s.write_attribute("value_offset", st.value_offset);
}

// data.test_path: attributes test_data, test_rows, test_rel_grad_error, test_grad_mae, test_grad_rmse,
// test_value_mae, test_value_offset and test_value_mae_per_atom (NaN but for the frames layout).
void write_test_metrics(const Location& group, const records::TestMetrics& test) {
  group.write_attribute("test_data", test.file);
  group.write_attribute("test_rows", test.rows);
  group.write_attribute("test_rel_grad_error", test.rel_grad_error);
  group.write_attribute("test_grad_mae", test.grad_mae);
  group.write_attribute("test_grad_rmse", test.grad_rmse);
  group.write_attribute("test_value_mae", test.value_mae);
  group.write_attribute("test_value_offset", test.value_offset);
  group.write_attribute("test_value_mae_per_atom", test.value_mae_per_atom);
}

void write_run(const Location& runs, const config::RunSpec& run, const RunProvenance& context,
               const records::TrainResult& result) {
  const Location group = runs.create_group(run.name);
  if (!context.numbers.empty()) group.write_attribute("numbers", context.numbers);
  if (context.test) write_test_metrics(group, *context.test);
  write_standardization(group, context.standardization);
  group.write_attribute("weighted", static_cast<int64_t>(context.weighted));
  write_history(group, result.history);
  write_parameters(group.create_group("model"), result.parameters);
  if (!result.last_parameters.empty()) write_parameters(group.create_group("model_last"), result.last_parameters);
  write_settings(group, run, context, result);
  write_outcome(group, result);
}

}  // namespace

namespace {

// A results file: the sweep's attributes, then whatever `write_runs` adds.
void write_results_file(const std::string& path, const config::Config& config, const std::string& command_line,
                        const std::function<void(const File&)>& write_runs) {
  write_file_atomically(path, [&](const File& file) {
    file.write_attribute("tool_version", std::string(kVersion));
    file.write_attribute("git_commit", std::string(kGitCommit));
    file.write_attribute("command_line", command_line);
    file.write_attribute("config_path", config.path);
    file.write_attribute("config_yaml", config.yaml_text);
    file.write_attribute("sweep_name", config.name);
    file.write_attribute("created", utc_now());
    write_runs(file);
  });
}

}  // namespace

void write_parameters(const Location& group, const std::vector<std::pair<std::string, torch::Tensor>>& parameters) {
  for (const auto& [name, tensor] : parameters) {
    const auto t = tensor.contiguous();
    const std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    if (t.scalar_type() == torch::kFloat64)
      group.write(name, shape, t.data_ptr<double>());
    else
      group.write(name, shape, t.to(torch::kFloat32).contiguous().data_ptr<float>());
  }
}

torch::Tensor read_parameter(const Location& group, const std::string& name) {
  const auto shape = group.dataset_info(name).shape;
  auto values = group.read_rows(name, 0, shape.empty() ? 1 : shape[0]);
  return torch::from_blob(values.data(), {static_cast<int64_t>(values.size())}, torch::kFloat64).clone().view(shape);
}

void write_history(const Location& group, const std::vector<records::EpochRecord>& history) {
  std::vector<int64_t> epoch;
  std::vector<double> loss, rel_error, val_loss, grad_norm, seconds, lr;
  for (const auto& r : history) {
    epoch.push_back(r.epoch);
    loss.push_back(r.train_loss);
    rel_error.push_back(r.rel_grad_error);
    val_loss.push_back(r.val_loss);
    grad_norm.push_back(r.grad_norm);
    seconds.push_back(r.seconds);
    lr.push_back(r.lr);
  }
  group.write("epoch", epoch);
  group.write("train_loss", loss);
  group.write("rel_grad_error", rel_error);
  group.write("val_loss", val_loss);
  group.write("grad_norm", grad_norm);
  group.write("epoch_seconds", seconds);
  group.write("lr", lr);
}

void write_results(const std::string& path, const config::Config& config, const config::RunSpec& run,
                   const RunProvenance& context, const records::TrainResult& result) {
  write_results_file(path, config, context.command_line,
                     [&](const File& file) { write_run(file.create_group("runs"), run, context, result); });
}

namespace {

// HDF5 1.10's object copy (H5Ocopy) crashes instead of failing when the disk fills up under it, so a merge first
// makes sure that the folder has room for what it copies (the run files' sizes, with a margin).
void check_room_for_merge(const std::string& path, const std::vector<std::string>& run_files) {
  namespace fs = std::filesystem;
  uintmax_t needed = 1 << 20;
  for (const auto& file : run_files) needed += fs::file_size(file) + fs::file_size(file) / 4;
  const fs::path folder = fs::absolute(path).parent_path();
  std::error_code error;
  const fs::space_info space = fs::space(folder, error);
  if (!error && space.available < needed)
    throw IoError("not enough space to write '" + path + "': it needs about " + std::to_string(needed >> 10) +
                  " KiB, " + folder.string() + " has " + std::to_string(space.available >> 10) +
                  " KiB free (the run files in runs/ are complete; free some space and run the same command again)");
}

// Each /summary row's place by the one best-run rule (records::best_first), 1 for the best: what analyze.py
// reads, so that it never re-implements the rule. `table` holds the columns name (1), status (2),
// final_rel_grad_error (5) and best_val_loss (7).
std::vector<int64_t> summary_ranks(const std::vector<TableColumn>& table) {
  std::vector<records::Standing> standings;
  for (size_t row = 0; row < table[1].texts.size(); ++row)
    standings.push_back({records::parse_run_status(table[2].texts[row]).value_or(records::RunStatus::interrupted),
                         table[7].reals[row], table[5].reals[row], table[1].texts[row]});
  const std::vector<size_t> order = records::best_first(standings);
  std::vector<int64_t> ranks(order.size());
  for (size_t place = 0; place < order.size(); ++place) ranks[order[place]] = static_cast<int64_t>(place) + 1;
  return ranks;
}

}  // namespace

void merge_results(const std::string& path, const config::Config& config, const std::string& command_line,
                   const std::vector<std::string>& run_files) {
  check_room_for_merge(path, run_files);
  write_results_file(path, config, command_line, [&](const File& file) {
    const Location runs = file.create_group("runs");
    // One row per run, for pandas: pd.DataFrame(h5py.File(path)["summary"][:]).
    std::vector<TableColumn> table;
    for (const char* column : {"id",
                               "name",
                               "status",
                               "epochs_run",
                               "final_loss",
                               "final_rel_grad_error",
                               "best_loss",
                               "best_val_loss",
                               "lr",
                               "activation",
                               "architecture",
                               "params",
                               "wall_seconds",
                               "final_val_loss",
                               "rung",
                               "pruned_at_epoch",
                               "schedule",
                               "lr_final",
                               "test_rel_grad_error",
                               "test_grad_mae",
                               "test_grad_rmse",
                               "test_value_mae",
                               "rank"})
      table.push_back(TableColumn{column, {}, {}, {}});
    for (const auto& run_file : run_files) {
      const File source = File::open_read_only(run_file);
      for (const auto& name : source.children("runs")) {
        runs.copy_from(source, "runs/" + name, name);
        const Location g = runs.open_group(name);
        for (int k : {0, 1, 2, 9, 10, 11}) table[k].texts.push_back(g.read_string_attribute(table[k].name));
        table[3].ints.push_back(g.read_int_attribute("epochs_run"));
        for (int k : {14, 15})  // files written before pruning existed: not pruned
          table[k].ints.push_back(g.has_attribute(table[k].name) ? g.read_int_attribute(table[k].name)
                                                                 : (k == 14 ? -1 : 0));
        table[16].texts.push_back(g.has_attribute("schedule") ? g.read_string_attribute("schedule") : "constant");
        for (int k : {4, 5, 6, 7, 8, 12, 13, 17, 18, 19, 20, 21}) {  // NaN where absent (test_*: no test file)
          const bool present = g.has_attribute(table[k].name);
          table[k].reals.push_back(present ? g.read_double_attribute(table[k].name)
                                           : std::numeric_limits<double>::quiet_NaN());
        }
      }
    }
    table[22].ints = summary_ranks(table);
    if (!table[0].texts.empty()) file.write_table("summary", table);
  });
}

}  // namespace gradfit::io
