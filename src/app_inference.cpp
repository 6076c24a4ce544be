// The commands that use a fitted potential: eval and export (see docs/use.md).
#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "app.h"
#include "app_compute.h"
#include "common/error.h"
#include "data/dataset.h"
#include "inference/evaluate.h"
#include "inference/export.h"
#include "io/files.h"
#include "io/h5.h"
#include "io/saved_run.h"
#include "model/analytic.h"
#include "parallel/agree.h"

namespace gradfit {
namespace {

// Every rank reads the run (a few attributes and the weights); a failure is everybody's.
io::SavedRun read_run_on_all(const std::string& path, const std::string& selector, const parallel::Comm& comm) {
  io::SavedRun run;
  parallel::all_or_none(comm, true, [&] { run = io::read_saved_run(path, selector); });
  return run;
}

std::string run_text(const io::SavedRun& run) {
  return "run '" + run.name + "' (id " + run.id + ", " + model::architecture(run.model, run.input_dim) + " " +
         config::to_string(run.model.activation) + " " + config::to_string(run.model.dtype) + ", " + run.status +
         ") of " + run.file;
}

io::File open_data_file(const std::string& data_path) {
  try {
    return io::File::open_read_only(data_path);
  } catch (const IoError& e) {
    throw DataError(e.what());
  }
}

// The data file's n against the model's, before any rows are read. One rank.
void check_input_dim(const std::string& data_path, const io::SavedRun& run) {
  const auto file = open_data_file(data_path);
  if (!file.has("x") || data::holds_frames(file)) return;  // load_points_for says what is wrong
  const auto shape = file.dataset_info("x").shape;
  if (shape.size() == 2 && shape[1] != run.input_dim)
    throw DataError(data_path + ": dataset 'x' has n = " + std::to_string(shape[1]) + " columns, but " + run_text(run) +
                    " takes n = " + std::to_string(run.input_dim) + " inputs");
}

// A command's --out against the files it reads: never one of them, whatever the path's spelling. One rank.
void check_out_is_not_an_input(const std::string& command, const std::string& out,
                               const std::vector<std::pair<std::string, std::string>>& inputs) {
  for (const auto& [what, path] : inputs)
    if (io::same_file(out, path))
      throw ConfigError("--out " + out + " is the " + what + " " + path + ": " + command +
                        " never writes over a file it reads; choose another name");
}

config::Device device_kind(const std::string& name) {  // main.cpp lets auto, cpu and cuda through
  return name == "cpu" ? config::Device::cpu : name == "cuda" ? config::Device::cuda : config::Device::auto_select;
}

// model.features atom_centered: the run as the model of the data file's atoms (attribute `numbers`: the training
// molecule, or another structure of its elements). Other runs as they are. Every rank; a failure is everybody's.
io::SavedRun run_for_data(const io::SavedRun& run, const std::string& data_path, const parallel::Comm& comm) {
  if (!config::features_need_elements(run.model)) return run;
  io::SavedRun out;
  parallel::all_or_none(comm, true, [&] {
    const auto file = open_data_file(data_path);
    if (data::holds_frames(file)) {  // any structures of the run's elements (load_points_for checks them)
      out = run;
      return;
    }
    if (!file.has_attribute("numbers"))
      throw DataError(data_path + " has no attribute 'numbers' (the atoms' elements), which " + run_text(run) +
                      " needs");
    out = io::for_atoms(run, file.read_int_vector_attribute("numbers"), data_path);
  });
  return out;
}

int eval(const EvalOptions& options, const parallel::Comm& world) {
  const auto run = run_for_data(read_run_on_all(options.results_path, options.run, world), options.data_path, world);
  parallel::all_or_none(world, world.is_root(), [&] {
    if (!options.out_path.empty())
      check_out_is_not_an_input("eval", options.out_path,
                                {{"results file", run.file}, {"data file", options.data_path}});
    check_input_dim(options.data_path, run);
  });
  // Subnormal floats as in training, so that eval's numbers are data.test_path's.
  const torch::Device device =
      set_up_compute({options.threads, run.denormals, device_kind(options.device), "--device"}, world).device;
  auto data = data::load_points_for(run.model, options.data_path, world);  // checked as training and data.test_path
  if (world.is_root())
    std::printf("gradfit_dist eval: %s at %lld %s of %s, %d rank%s, device %s\n", run_text(run).c_str(),
                static_cast<long long>(data.total_rows), data.is_frames() ? "frames" : "points",
                options.data_path.c_str(), world.size(), world.size() == 1 ? "" : "s", device.str().c_str());
  const auto prediction = inference::evaluate_run(run, data, device, world);
  if (!options.out_path.empty())
    inference::write_predictions(options.out_path, prediction, data, {run.file, run.name, run.id, options.data_path},
                                 world);
  if (world.is_root()) {
    std::printf("%s", inference::metrics_text(prediction.metrics).c_str());
    if (!options.out_path.empty()) std::printf("wrote %s\n", options.out_path.c_str());
    std::fflush(stdout);
  }
  return 0;
}

int export_model(const ExportOptions& options, const parallel::Comm& world) {
  parallel::all_or_none(world, world.is_root(), [&] {  // one rank writes; the others learn how it went
    const auto run = io::read_saved_run(options.results_path, options.run);
    check_out_is_not_an_input("export", options.out_path, {{"results file", run.file}});
    inference::export_model(run, options.out_path);
    std::printf("wrote %s: TorchScript of %s\n", options.out_path.c_str(), run_text(run).c_str());
    std::fflush(stdout);
  });
  return 0;
}

}  // namespace

int run_eval(const EvalOptions& options, const parallel::Comm& comm) {
  return run_reporting_errors(comm, [&] { return eval(options, comm); });
}

int run_export(const ExportOptions& options, const parallel::Comm& comm) {
  return run_reporting_errors(comm, [&] { return export_model(options, comm); });
}

}  // namespace gradfit
