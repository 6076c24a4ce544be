#include "io/checkpoint.h"

#include "common/error.h"
#include "io/h5.h"
#include "io/results.h"

namespace gradfit::io {
namespace {

// The history columns, in the order of train::EpochRecord.
const char* const kColumns[] = {"epoch", "train_loss", "rel_grad_error", "val_loss", "grad_norm", "epoch_seconds"};

}  // namespace

void write_checkpoint(const std::string& path, const std::string& run_id, const train::Checkpoint& c,
                      const std::function<void()>& before_rename) {
  write_file_atomically(
      path,
      [&](const File& file) {
        file.write_attribute("run_id", run_id);
        file.write_attribute("epoch", c.epoch);
        file.write_attribute("next_batch", c.next_batch);
        file.write_attribute("partial_grad_sse", c.partial_grad_sse);
        file.write_attribute("partial_value_sse", c.partial_value_sse);
        file.write_attribute("partial_max_grad_norm", c.partial_max_grad_norm);
        file.write_attribute("partial_seconds", c.partial_seconds);
        file.write_attribute("best_val_loss", c.best_val_loss);
        file.write_attribute("epochs_since_best", c.epochs_since_best);
        file.write_attribute("wall_seconds", c.wall_seconds);
        file.write_attribute("allreduce_seconds", c.allreduce_seconds);
        write_history(file.create_group("history"), c.history);
        write_parameters(file.create_group("parameters"), c.parameters);
        file.write_bytes("optimizer_state", c.optimizer_state);
      },
      before_rename);
}

train::Checkpoint read_checkpoint(const std::string& path, const std::string& run_id) {
  const File file = File::open_read_only(path);
  if (file.read_string_attribute("run_id") != run_id) throw IoError("checkpoint '" + path + "' belongs to another run");
  train::Checkpoint c;
  c.epoch = file.read_int_attribute("epoch");
  c.next_batch = file.read_int_attribute("next_batch");
  c.partial_grad_sse = file.read_double_attribute("partial_grad_sse");
  c.partial_value_sse = file.read_double_attribute("partial_value_sse");
  c.partial_max_grad_norm = file.read_double_attribute("partial_max_grad_norm");
  c.partial_seconds = file.read_double_attribute("partial_seconds");
  c.best_val_loss = file.read_double_attribute("best_val_loss");
  c.epochs_since_best = file.read_int_attribute("epochs_since_best");
  c.wall_seconds = file.read_double_attribute("wall_seconds");
  c.allreduce_seconds = file.read_double_attribute("allreduce_seconds");
  std::vector<double> columns[6];
  const int64_t epochs = file.dataset_info("history/epoch").shape.at(0);
  for (int k = 0; k < 6; ++k) columns[k] = file.read_rows(std::string("history/") + kColumns[k], 0, epochs);
  for (int64_t e = 0; e < epochs; ++e) {
    train::EpochRecord r;
    r.epoch = static_cast<int64_t>(columns[0][e]);
    r.train_loss = columns[1][e];
    r.rel_grad_error = columns[2][e];
    r.val_loss = columns[3][e];
    r.grad_norm = columns[4][e];
    r.seconds = columns[5][e];
    c.history.push_back(r);
  }
  for (const auto& name : file.children("parameters")) {
    const std::string where = "parameters/" + name;
    const auto info = file.dataset_info(where);
    auto values = file.read_rows(where, 0, info.shape.empty() ? 1 : info.shape[0]);
    auto tensor = torch::from_blob(values.data(), {static_cast<int64_t>(values.size())}, torch::kFloat64)
                      .clone()
                      .view(info.shape);
    c.parameters.emplace_back(name, tensor);  // float64; copy_ into the model converts exactly
  }
  c.optimizer_state = file.read_bytes("optimizer_state");
  return c;
}

}  // namespace gradfit::io
