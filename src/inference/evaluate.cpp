#include "inference/evaluate.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "io/h5.h"
#include "model/analytic.h"
#include "model/analytic_frames.h"
#include "model/features_atom_centered.h"
#include "model/frame_descriptor.h"
#include "parallel/agree.h"

namespace gradfit::inference {
namespace {

// The largest of every rank's `value` >= 0 (collective). Non-negative doubles order as their bit patterns do as
// integers, so the largest is the smallest of the negated patterns (the one integer reduction Comm has).
double max_over_ranks(double value, const parallel::Comm& comm) {
  int64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  bits = -comm.allreduce_min(-bits);
  std::memcpy(&value, &bits, sizeof bits);
  return value;
}

// This rank's sums of the errors, in float64, laid out for one allreduce.
struct ErrorSums {
  explicit ErrorSums(int64_t dim) : abs(dim, 0.0), sq(dim, 0.0) {}
  std::vector<double> abs, sq;  // per component: Σ|e_j|, Σ e_j²
  double error_sq = 0, samples_sq = 0, max_abs = 0;
  double value_abs = 0, value_sq = 0, value_sum = 0, value_abs_per_atom = 0;

  void add_gradient(const torch::Tensor& predicted, const torch::Tensor& samples) {
    const auto e = (predicted - samples).to(torch::kFloat64);
    const auto abs_sums = e.abs().sum(0).contiguous(), sq_sums = e.square().sum(0).contiguous();
    for (size_t j = 0; j < abs.size(); ++j) {
      abs[j] += abs_sums.data_ptr<double>()[j];
      sq[j] += sq_sums.data_ptr<double>()[j];
    }
    error_sq += sq_sums.sum().item<double>();
    samples_sq += samples.to(torch::kFloat64).square().sum().item<double>();
    if (e.numel() > 0) max_abs = std::max(max_abs, e.abs().max().item<double>());
  }
  void add_value(const torch::Tensor& predicted, const torch::Tensor& values) {
    const auto e = (predicted - values).to(torch::kFloat64);
    value_abs += e.abs().sum().item<double>();
    value_sq += e.square().sum().item<double>();
    value_sum += e.sum().item<double>();
  }
  // The sums over every rank (collective).
  void reduce(const parallel::Comm& comm) {
    std::vector<double> all(abs);
    all.insert(all.end(), sq.begin(), sq.end());
    all.insert(all.end(), {error_sq, samples_sq, value_abs, value_sq, value_sum, value_abs_per_atom});
    comm.allreduce_sum(all.data(), static_cast<int64_t>(all.size()));
    const size_t n = abs.size();
    std::copy(all.begin(), all.begin() + n, abs.begin());
    std::copy(all.begin() + n, all.begin() + 2 * n, sq.begin());
    error_sq = all[2 * n], samples_sq = all[2 * n + 1];
    value_abs = all[2 * n + 2], value_sq = all[2 * n + 3], value_sum = all[2 * n + 4];
    value_abs_per_atom = all[2 * n + 5];
    max_abs = max_over_ranks(max_abs, comm);
  }
};

// The model of a run and the standardization it was trained under.
struct Potential {
  model::Mlp& model;
  const model::Standardization& standardization;
};

// V and dV/dx at the rows of x (B×n, CPU, user units), computed on `device`, into values (B) and grads (B×n).
void predict_rows(const Potential& potential, const torch::Tensor& x, torch::Device device, torch::Tensor values,
                  torch::Tensor grads) {
  const auto& st = potential.standardization;
  const auto x_chunk = model::standardize_inputs(st, x).to(device).detach().requires_grad_(true);
  const auto v = potential.model->forward(x_chunk);
  const auto g = torch::autograd::grad({v}, {x_chunk}, /*grad_outputs=*/{torch::ones_like(v)},
                                       /*retain_graph=*/false, /*create_graph=*/false)[0];
  values.copy_(model::user_values(st, v.detach()));
  grads.copy_(model::user_gradients(st, g));
}

// The same for the rows [first, first + rows) of the shard, computed within the block of `block_rows` rows that
// holds them in the GLOBAL row order (the block starting at a multiple of block_rows), the rows outside the shard
// zero. Every row is then computed at the same place of a product of the same shape whatever the rank count (BLAS
// and vectorised kernels round differently by a row's place), so the predictions are bit for bit those of one rank.
void predict_chunk(const Potential& model, const data::Dataset& data, int64_t first, int64_t rows, int64_t block_rows,
                   torch::Device device, torch::Tensor values, torch::Tensor grads) {
  const int64_t offset = (data.shard.begin + first) % block_rows;
  if (offset == 0 && rows == block_rows) {
    predict_rows(model, data.x.narrow(0, first, rows), device, values, grads);
    return;
  }
  auto x = torch::zeros({block_rows, data.dim}, data.x.options());
  x.narrow(0, offset, rows).copy_(data.x.narrow(0, first, rows));
  auto block_values = torch::empty({block_rows}, values.options());
  auto block_grads = torch::empty({block_rows, data.dim}, grads.options());
  predict_rows(model, x, device, block_values, block_grads);
  values.copy_(block_values.narrow(0, offset, rows));
  grads.copy_(block_grads.narrow(0, offset, rows));
}

// The value metrics after the mean offset is removed: a second pass over V - value (collective).
void centred_value_metrics(const torch::Tensor& predicted, const torch::Tensor& values, EvalMetrics& m,
                           const parallel::Comm& comm) {
  constexpr int64_t kRows = int64_t{1} << 16;
  double sums[2] = {0, 0};
  for (int64_t first = 0; first < predicted.size(0); first += kRows) {
    const int64_t rows = std::min(kRows, predicted.size(0) - first);
    const auto e =
        (predicted.narrow(0, first, rows) - values.narrow(0, first, rows)).to(torch::kFloat64) - m.value_offset;
    sums[0] += e.abs().sum().item<double>();
    sums[1] += e.square().sum().item<double>();
  }
  comm.allreduce_sum(sums, 2);
  m.value_mae_centred = sums[0] / static_cast<double>(m.rows);
  m.value_rmse_centred = std::sqrt(sums[1] / static_cast<double>(m.rows));
}

// `gradient_rows`: the rows of dV/dx (the data's rows, or the frames layout's atoms).
EvalMetrics metrics_of(const ErrorSums& s, const data::Dataset& data, bool has_grad, int64_t gradient_rows) {
  EvalMetrics m;
  m.rows = data.total_rows;
  const auto rows = static_cast<double>(data.total_rows);
  if (has_grad) {
    for (size_t j = 0; j < s.abs.size(); ++j) {
      m.grad_mae.push_back(s.abs[j] / static_cast<double>(gradient_rows));
      m.grad_rmse.push_back(std::sqrt(s.sq[j] / static_cast<double>(gradient_rows)));
    }
    m.rel_grad_error = std::sqrt(s.error_sq) / std::sqrt(s.samples_sq);
    m.max_abs_grad_error = s.max_abs;
  }
  if (data.has_values()) {
    m.value_mae = s.value_abs / rows;
    m.value_rmse = std::sqrt(s.value_sq / rows);
    m.value_offset = s.value_sum / rows;
  }
  return m;
}

}  // namespace

Prediction evaluate(model::Mlp& model, const model::Standardization& standardization, data::Dataset& data,
                    torch::Device device, int64_t chunk_rows, const parallel::Comm& comm) {
  model->to(device);
  for (auto& p : model->parameters()) p.requires_grad_(false);  // derivatives by x only
  const int64_t count = data.shard.count;
  const bool has_grad = data.has_grad_samples();  // all ranks agree: one file
  Prediction out;
  out.values = torch::empty({count}, data.x.options());
  // The sample gradients' storage takes the predictions once their errors are summed (see the header).
  out.grads = has_grad ? data.grad_samples : torch::empty_like(data.x);
  ErrorSums sums(data.dim);
  for (int64_t first = 0; first < count;) {  // chunks end where the global blocks of chunk_rows rows end
    const int64_t rows = std::min(chunk_rows - (data.shard.begin + first) % chunk_rows, count - first);
    const auto values = out.values.narrow(0, first, rows), grads = out.grads.narrow(0, first, rows);
    const auto samples = has_grad ? grads.clone() : torch::Tensor();  // one chunk, before it is overwritten
    predict_chunk({model, standardization}, data, first, rows, chunk_rows, device, values, grads);
    if (has_grad) sums.add_gradient(grads, samples);
    if (data.has_values()) sums.add_value(values, data.values.narrow(0, first, rows));
    first += rows;
  }
  data.grad_samples = torch::Tensor();  // now the predictions
  sums.reduce(comm);
  out.metrics = metrics_of(sums, data, has_grad, data.total_rows);
  if (data.has_values()) centred_value_metrics(out.values, data.values, out.metrics, comm);
  return out;
}

Prediction evaluate_run(const io::SavedRun& run, data::Dataset& points, torch::Device device,
                        const parallel::Comm& comm) {
  if (points.is_frames()) return evaluate_frames(run, points, comm);
  auto model = io::make_model(run);
  const int64_t chunk_rows =
      model::default_chunk_rows(run.input_dim, model::network_shape(run.model, run.input_dim).widest(),
                                model::torch_dtype(run.model.dtype), device);
  return evaluate(model, run.standardization, points, device, chunk_rows, comm);
}

namespace {

// The frames of a shard as the loss reads them (their values unused).
std::vector<model::FrameView> frame_views(const data::Frames& frames) {
  std::vector<model::FrameView> views;
  for (size_t f = 0, at = 0; f < frames.atoms.size(); at += static_cast<size_t>(frames.atoms[f]), ++f)
    views.push_back({frames.atoms[f], frames.positions.data() + 3 * at, frames.numbers.data() + at,
                     frames.grad.data() + 3 * at, &frames.cells[f], 0.0});
  return views;
}

// The saved run's first model's V, dV/dx and virials on `frames` (model/analytic_frames.h), V with the run's element
// energies.
model::FramesAnalyticLoss::Predictions predict_frames(const io::SavedRun& run, const data::Frames& frames) {
  auto model = io::make_model(run);
  std::vector<torch::Tensor> params;  // 1 × shape each, in the networks' order (ensemble_views's)
  for (const auto& p : model->parameters()) params.push_back(p.detach().unsqueeze(0));
  const auto elements = run.model.elements.empty() ? model::distinct_elements(run.model.numbers) : run.model.elements;
  const auto shape = model::network_shape(run.model, run.input_dim);
  const auto dtype = model::torch_dtype(run.model.dtype);
  const int64_t width =
      model::descriptor::FrameDescriptor::width_of(run.model.descriptor, static_cast<int64_t>(elements.size()));
  const int64_t largest = frames.atoms.empty() ? 1 : *std::max_element(frames.atoms.begin(), frames.atoms.end());
  model::FramesAnalyticLoss loss(run.model.activation, params, shape, run.model.descriptor, elements,
                                 model::default_chunk_rows(width, shape.widest(), dtype, torch::kCPU), largest);
  loss.set_options(torch::TensorOptions().dtype(dtype));
  auto out = loss.predict(frame_views(frames));
  const auto& b = run.standardization.element_energies;
  if (!b.empty()) out.values += torch::tensor(data::element_energy_sums(frames, b, elements), torch::kFloat64);
  return out;
}

}  // namespace

Prediction evaluate_frames(const io::SavedRun& run, const data::Dataset& points, const parallel::Comm& comm) {
  const data::Frames& frames = *points.frames;
  const auto predicted = predict_frames(run, frames);
  Prediction out{predicted.values, predicted.grads, predicted.virials, {}};
  ErrorSums sums(3);
  sums.add_gradient(
      out.grads, torch::from_blob(const_cast<double*>(frames.grad.data()), {frames.shard.atoms, 3}, torch::kFloat64));
  if (points.has_values()) {
    const auto values = points.values.to(torch::kFloat64);
    sums.add_value(out.values, values);
    const auto atoms = torch::tensor(frames.atoms, torch::kInt64).to(torch::kFloat64);
    sums.value_abs_per_atom = ((out.values - values).abs() / atoms).sum().item<double>();
  }
  sums.reduce(comm);
  out.metrics = metrics_of(sums, points, /*has_grad=*/true, frames.total_atoms);
  out.metrics.atoms = frames.total_atoms;
  if (points.has_values()) {
    out.metrics.value_mae_per_atom = sums.value_abs_per_atom / static_cast<double>(points.total_rows);
    centred_value_metrics(out.values, points.values.to(torch::kFloat64), out.metrics, comm);
  }
  return out;
}

namespace {

// Rank 0: a new file at `temporary` with full-size datasets value and grad and the attributes of `source`.
void create_prediction_file(const std::string& temporary, const data::Dataset& data, bool float32,
                            const PredictionSource& source) {
  const io::File file = io::File::create(temporary);
  file.create_dataset("value", {data.total_rows}, float32);
  if (data.is_frames()) {  // per atom and per frame, float64
    file.create_dataset("grad", {data.frames->total_atoms, 3}, false);
    file.create_dataset("virial", {data.total_rows, 9}, false);
    file.write_attribute("layout", std::string("frames"));
  } else {
    file.create_dataset("grad", {data.total_rows, data.dim}, float32);
  }
  file.write_attribute("results_file", source.results_file);
  file.write_attribute("run_name", source.run_name);
  file.write_attribute("run_id", source.run_id);
  file.write_attribute("data_file", source.data_file);
}

void write_shard(const std::string& temporary, const Prediction& prediction, const data::Dataset& data) {
  const io::File file = io::File::open_read_write(temporary);
  const auto values = prediction.values.contiguous(), grads = prediction.grads.contiguous();
  const int64_t begin = data.shard.begin, count = data.shard.count;
  if (data.is_frames()) {
    const auto virials = prediction.virials.contiguous();
    file.write_rows("value", begin, count, values.data_ptr<double>());
    file.write_rows("grad", data.frames->shard.first_atom, data.frames->shard.atoms, grads.data_ptr<double>());
    file.write_rows("virial", begin, count, virials.data_ptr<double>());
  } else if (values.scalar_type() == torch::kFloat32) {
    file.write_rows("value", begin, count, values.data_ptr<float>());
    file.write_rows("grad", begin, count, grads.data_ptr<float>());
  } else {
    file.write_rows("value", begin, count, values.data_ptr<double>());
    file.write_rows("grad", begin, count, grads.data_ptr<double>());
  }
}

// Each rank writes its rows in turn: a token goes from rank r-1 to rank r, saying whether every rank before
// succeeded (a rank after a failed one writes nothing). Returns this rank's error message, empty on success.
std::string write_in_turn(const std::string& temporary, const Prediction& prediction, const data::Dataset& data,
                          const parallel::Comm& comm) {
  constexpr int kTokenTag = 7301;
  double all_ok = 1;
  if (comm.rank() > 0) comm.receive(&all_ok, 1, comm.rank() - 1, kTokenTag);
  std::string error;
  if (all_ok != 0) {
    try {
      write_shard(temporary, prediction, data);
    } catch (const std::exception& e) {
      error = message_of(e);
      all_ok = 0;
    }
  }
  if (comm.rank() + 1 < comm.size()) comm.send(&all_ok, 1, comm.rank() + 1, kTokenTag);
  return error;
}

}  // namespace

void write_predictions(const std::string& path, const Prediction& prediction, const data::Dataset& data,
                       const PredictionSource& source, const parallel::Comm& comm) {
  int64_t pid = ::getpid();  // rank 0's names the temporary
  comm.broadcast(&pid, sizeof pid);
  const std::string temporary = path + ".tmp-" + std::to_string(pid);
  const bool float32 = prediction.values.scalar_type() == torch::kFloat32 && !data.is_frames();
  try {
    parallel::all_or_none(comm, comm.is_root(), [&] { create_prediction_file(temporary, data, float32, source); });
    const std::string error = write_in_turn(temporary, prediction, data, comm);
    parallel::all_or_none(comm, true, [&] {
      if (!error.empty()) throw IoError(error);
    });
    parallel::all_or_none(comm, comm.is_root(), [&] { io::durable_rename(temporary, path); });
  } catch (const CollectiveError&) {
    if (comm.is_root()) std::remove(temporary.c_str());
    throw;
  }
}

namespace {

std::string numbers_text(const std::vector<double>& v) {
  std::string s = "[";
  char number[32];
  for (size_t j = 0; j < v.size(); ++j) {
    std::snprintf(number, sizeof number, "%s%.6e", j ? ", " : "", v[j]);
    s += number;
  }
  return s + "]";
}

}  // namespace

std::string metrics_text(const EvalMetrics& m) {
  std::string text;
  char line[320];
  if (m.atoms > 0) {
    std::snprintf(line, sizeof line, "%lld frames of %lld atoms: the gradient metrics over the atoms\n",
                  static_cast<long long>(m.rows), static_cast<long long>(m.atoms));
    text += line;
  }
  if (!m.grad_mae.empty()) {
    text += "dV/dx MAE per component:  " + numbers_text(m.grad_mae) + "\n";
    text += "dV/dx RMSE per component: " + numbers_text(m.grad_rmse) + "\n";
    std::snprintf(line, sizeof line,
                  "relative gradient error ||dV/dx - S|| / ||S||: %.6e\nmax abs gradient error: %.6e\n",
                  m.rel_grad_error, m.max_abs_grad_error);
    text += line;
  } else {
    text += "no dataset 'grad' in the data: predictions only, no gradient metrics\n";
  }
  if (!std::isnan(m.value_mae)) {
    std::snprintf(line, sizeof line,
                  "V MAE %.6e, RMSE %.6e as is; mean offset %.6e (V is defined up to a constant); after removing "
                  "it: MAE %.6e, RMSE %.6e\n",
                  m.value_mae, m.value_rmse, m.value_offset, m.value_mae_centred, m.value_rmse_centred);
    text += line;
  }
  if (!std::isnan(m.value_mae_per_atom)) {
    std::snprintf(line, sizeof line, "V MAE per atom (|V - value| / atoms, as is): %.6e\n", m.value_mae_per_atom);
    text += line;
  }
  return text;
}

}  // namespace gradfit::inference
