#include "io/checkpoint.h"

#include <limits>

#include "common/error.h"
#include "io/h5.h"
#include "io/results.h"

namespace gradfit::io {
namespace {

// The history columns, in the order of records::EpochRecord.
const char* const kColumns[] = {"epoch",         "train_loss", "rel_grad_error", "val_loss", "grad_norm",
                                "epoch_seconds", "lr"};
constexpr int kColumnCount = 7;

}  // namespace

namespace {

// The tensors of group `name`, as float64 (copy_ into the model converts exactly).
NamedTensors read_parameters(const Location& at, const std::string& name) {
  NamedTensors parameters;
  for (const auto& child : at.children(name)) parameters.emplace_back(child, read_parameter(at, name + "/" + child));
  return parameters;
}

void write_state(const Location& at, const std::string& run_id, const records::Checkpoint& c) {
  at.write_attribute("run_id", run_id);
  at.write_attribute("epoch", c.epoch);
  at.write_attribute("next_batch", c.next_batch);
  at.write_attribute("partial_grad_sse", c.partial_grad_sse);
  at.write_attribute("partial_value_sse", c.partial_value_sse);
  at.write_attribute("partial_grad_loss", c.partial_grad_loss);
  at.write_attribute("partial_max_grad_norm", c.partial_max_grad_norm);
  at.write_attribute("partial_seconds", c.partial_seconds);
  at.write_attribute("best_val_loss", c.best_val_loss);
  at.write_attribute("best_epoch", c.best_epoch);
  at.write_attribute("epochs_since_best", c.epochs_since_best);
  at.write_attribute("wall_seconds", c.wall_seconds);
  at.write_attribute("allreduce_seconds", c.allreduce_seconds);
  at.write_attribute("schedule_lr", c.schedule.lr);
  at.write_attribute("plateau_best", c.schedule.plateau_best);
  at.write_attribute("plateau_bad_epochs", c.schedule.plateau_bad_epochs);
  write_history(at.create_group("history"), c.history);
  write_parameters(at.create_group("parameters"), c.parameters);
  if (!c.best_parameters.empty()) write_parameters(at.create_group("best_parameters"), c.best_parameters);
  if (!c.ema_parameters.empty()) write_parameters(at.create_group("ema_parameters"), c.ema_parameters);
  at.write_bytes("optimizer_state", c.optimizer_state);
}

// The schedule's state; a checkpoint from before schedules has none (the defaults: a constant rate).
void read_schedule_state(const Location& at, records::ScheduleState& state) {
  if (!at.has_attribute("schedule_lr")) return;
  state.lr = at.read_double_attribute("schedule_lr");
  state.plateau_best = at.read_double_attribute("plateau_best");
  state.plateau_bad_epochs = at.read_int_attribute("plateau_bad_epochs");
}

records::Checkpoint read_state(const Location& at, const std::string& where, const std::string& run_id) {
  if (at.read_string_attribute("run_id") != run_id) throw IoError("checkpoint '" + where + "' belongs to another run");
  records::Checkpoint c;
  c.epoch = at.read_int_attribute("epoch");
  c.next_batch = at.read_int_attribute("next_batch");
  c.partial_grad_sse = at.read_double_attribute("partial_grad_sse");
  c.partial_value_sse = at.read_double_attribute("partial_value_sse");
  // Absent from checkpoints written before train.loss existed, which are all mse runs (the sum unused).
  c.partial_grad_loss = at.has_attribute("partial_grad_loss") ? at.read_double_attribute("partial_grad_loss") : 0.0;
  c.partial_max_grad_norm = at.read_double_attribute("partial_max_grad_norm");
  c.partial_seconds = at.read_double_attribute("partial_seconds");
  c.best_val_loss = at.read_double_attribute("best_val_loss");
  if (at.has_attribute("best_epoch")) c.best_epoch = at.read_int_attribute("best_epoch");
  c.epochs_since_best = at.read_int_attribute("epochs_since_best");
  c.wall_seconds = at.read_double_attribute("wall_seconds");
  c.allreduce_seconds = at.read_double_attribute("allreduce_seconds");
  read_schedule_state(at, c.schedule);
  std::vector<double> columns[kColumnCount];
  const int64_t epochs = at.dataset_info("history/epoch").shape.at(0);
  for (int k = 0; k < kColumnCount; ++k) {
    const std::string name = std::string("history/") + kColumns[k];
    // A checkpoint from before schedules has no lr column: NaN, filled in by the trainer.
    columns[k] = at.has(name) ? at.read_rows(name, 0, epochs)
                              : std::vector<double>(epochs, std::numeric_limits<double>::quiet_NaN());
  }
  for (int64_t e = 0; e < epochs; ++e) {
    records::EpochRecord r;
    r.epoch = static_cast<int64_t>(columns[0][e]);
    r.train_loss = columns[1][e];
    r.rel_grad_error = columns[2][e];
    r.val_loss = columns[3][e];
    r.grad_norm = columns[4][e];
    r.seconds = columns[5][e];
    r.lr = columns[6][e];
    c.history.push_back(r);
  }
  c.parameters = read_parameters(at, "parameters");
  if (at.has("best_parameters")) c.best_parameters = read_parameters(at, "best_parameters");
  if (at.has("ema_parameters")) c.ema_parameters = read_parameters(at, "ema_parameters");
  c.optimizer_state = at.read_bytes("optimizer_state");
  return c;
}

std::string joined(const std::vector<std::string>& ids) {
  std::string text;
  for (const auto& id : ids) text += (text.empty() ? "" : ",") + id;
  return text;
}

}  // namespace

void write_checkpoint(const std::string& path, const std::string& run_id, const records::Checkpoint& c,
                      const std::function<void()>& before_rename) {
  write_file_atomically(
      path, [&](const File& file) { write_state(file, run_id, c); }, before_rename);
}

void write_checkpoints(const std::string& path, const std::vector<std::string>& run_ids,
                       const std::vector<records::Checkpoint>& checkpoints,
                       const std::function<void()>& before_rename) {
  if (run_ids.size() == 1) return write_checkpoint(path, run_ids[0], checkpoints.at(0), before_rename);
  write_file_atomically(
      path,
      [&](const File& file) {
        file.write_attribute("ensemble", joined(run_ids));  // an ensemble: a group per run
        const auto runs = file.create_group("runs");
        for (size_t i = 0; i < run_ids.size(); ++i)
          write_state(runs.create_group(run_ids[i]), run_ids[i], checkpoints.at(i));
      },
      before_rename);
}

std::vector<std::string> checkpoint_runs(const std::string& path) {
  const File file = File::open_read_only(path);
  if (!file.has_attribute("ensemble")) return {file.read_string_attribute("run_id")};
  std::vector<std::string> ids;
  const std::string text = file.read_string_attribute("ensemble");
  for (size_t at = 0; at <= text.size();) {
    const size_t end = std::min(text.find(',', at), text.size());
    ids.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return ids;
}

std::vector<records::Checkpoint> read_checkpoints(const std::string& path, const std::vector<std::string>& run_ids) {
  const File file = File::open_read_only(path);
  std::vector<records::Checkpoint> checkpoints;
  if (!file.has_attribute("ensemble")) {
    if (run_ids.size() != 1) throw IoError("checkpoint '" + path + "' holds one run, not " + joined(run_ids));
    checkpoints.push_back(read_state(file, path, run_ids[0]));
    return checkpoints;
  }
  for (const auto& id : run_ids) {
    if (!file.has("runs/" + id)) throw IoError("checkpoint '" + path + "' holds no state of run " + id);
    checkpoints.push_back(read_state(file.open_group("runs/" + id), path, id));
  }
  return checkpoints;
}

}  // namespace gradfit::io
