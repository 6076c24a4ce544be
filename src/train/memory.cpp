#include "train/memory.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "data/dataset.h"
#include "model/analytic.h"
#include "model/frame_descriptor.h"
#include "model/mlp.h"

namespace gradfit::train {
namespace {

constexpr double kFloat64Bytes = 8;
constexpr double kRowIndexBytes = 8;  // an int64 row number

// The sizes an estimate is made of, as doubles.
struct Sizes {
  double rows = 0;       // N
  double shard = 0;      // rows of the largest shard of the group
  double batch = 0;      // rows of a batch on this rank (the shard for a full batch)
  double dim = 0;        // n
  double dtype = 4;      // bytes per element
  double row_bytes = 0;  // x, grad, values and weight of one row
  bool mini_batches = false;
  bool validation = false;
};

Sizes sizes_of(const config::RunSpec& run, const DataShape& data, int group_ranks) {
  Sizes s;
  const int64_t ranks = std::max(group_ranks, 1);
  s.rows = static_cast<double>(data.rows);
  s.shard = static_cast<double>(data.rows / ranks + (data.rows % ranks != 0 ? 1 : 0));
  s.mini_batches = run.train.batch_size > 0 && run.train.batch_size < data.rows;
  s.batch = s.mini_batches ? std::min(s.shard, static_cast<double>(run.train.batch_size)) : s.shard;
  s.validation = run.train.val_fraction > 0;
  s.dim = static_cast<double>(data.dim);
  s.dtype = run.model.dtype == config::DType::float64 ? 8 : 4;
  s.row_bytes = (2 * s.dim + (data.has_values ? 1 : 0) + (data.has_weights ? 1 : 0)) * s.dtype;
  return s;
}

// A block of rows read (float64), or generated and differentiated (x, V, dV/dx and autograd's copies: about four
// float64 copies; the gaussian wells' distances to every centre, kept for the backward pass, dominate there).
double reading_bytes(const config::DataSpec& spec, const Sizes& s) {
  if (spec.target == config::Target::file)
    return std::min(s.shard, static_cast<double>(data::kReadRows)) * s.dim * kFloat64Bytes;
  const double block = std::min(s.shard, static_cast<double>(data::kGenerateRows));
  double bytes = 4 * block * s.dim * kFloat64Bytes;
  if (spec.target == config::Target::gaussian_wells) {
    const double wells = static_cast<double>(spec.wells);
    bytes += (3 * block + 1) * wells * s.dim * kFloat64Bytes;  // the centres, and block × wells × n three times
  }
  return bytes;
}

// Batch copies (on the compute device) and the lists of rows (on the host).
double batch_bytes(const Sizes& s, bool on_gpu) {
  double copies = 0;
  if (s.mini_batches)
    copies = s.batch + (s.validation ? s.shard : 0);  // a batch, the validation rows
  else if (s.validation)
    copies = s.shard;                                    // training and validation rows
  double lists = 3 * s.shard * kRowIndexBytes;           // a plan's rows, gathered, an index
  if (s.mini_batches) lists += s.rows * kRowIndexBytes;  // the epoch's permutation of all rows
  if (s.validation) lists += s.rows;                     // a held-out mark per row
  return (on_gpu ? 0 : copies * s.row_bytes) + lists;
}

// Copies of the parameters each member keeps: weights, best weights, gradients, and the optimizer's state.
double parameter_copies(const config::OptimizerSpec& optimizer) {
  using config::Optimizer;
  if (optimizer.name == Optimizer::lbfgs)  // its history (s, y), direction, previous gradient, the line search's
    return 3 + 2 * static_cast<double>(optimizer.history_size) + 8;  // points and gradients, the kept end point
  const bool adam = optimizer.name == Optimizer::adam || optimizer.name == Optimizer::adamw;
  const double state = adam ? 2 : (optimizer.momentum > 0 ? 1 : 0);
  return 3 + state;
}

// The features' own work per chunk row and model (model/feature_map.h: each kind says).
double feature_elements_per_row(const config::ModelSpec& model, int64_t dim) {
  return model::make_feature_map(model, dim)->elements_per_row();
}

// `dim`: the data's n (the MLP takes the features' m).
double chunk_bytes(const config::RunSpec& run, const Sizes& s, int64_t dim, torch::Device device) {
  const auto dtype = model::torch_dtype(run.model.dtype);
  const int64_t inputs = model::feature_dim(run.model, dim);
  // Per atom, where φ is per atom: each atom is a row of its element's network (the widest, as an upper bound).
  const model::NetworkShape networks = model::network_shape(run.model, dim);
  const int64_t chunk_rows = run.train.chunk_rows > 0
                                 ? run.train.chunk_rows
                                 : model::default_chunk_rows(inputs, networks.widest(), dtype, device);
  // The analytic engine allocates its buffers for a whole chunk whatever the batch; autograd per chunk of a batch.
  const double rows = run.train.engine == config::Engine::analytic ? static_cast<double>(chunk_rows)
                                                                   : std::min(static_cast<double>(chunk_rows), s.batch);
  const int64_t network_rows = inputs / networks.inputs;
  const double per_row =
      static_cast<double>(network_rows * model::buffer_elements_per_row(networks.inputs, networks.widest())) +
      feature_elements_per_row(run.model, dim);
  return rows * per_row * s.dtype;
}

// The frames layout: bytes per atom of a shard (positions and grad in float64, numbers) and per frame (the cell,
// the atom count, the value with its copies, its row in the lists).
constexpr double kFrameAtomBytes = 3 * 8 + 3 * 8 + 8;
constexpr double kFrameBytes = 80 + 8 + 4 * 8 + 2 * kRowIndexBytes;
// The neighbour of an atom a descriptor keeps (model/frame_descriptor.h: Neighbour).
constexpr double kNeighbourBytes = 56;

// The largest share of `total` one of `ranks` ranks holds.
double share(int64_t total, int64_t ranks) {
  return static_cast<double>(total / ranks + (total % ranks != 0 ? 1 : 0));
}

MemoryEstimate frames_estimate(const config::RunSpec& run, const DataShape& data, int group_ranks, int64_t members,
                               torch::Device device) {
  const int64_t ranks = std::max(group_ranks, 1);
  const auto elements = std::max<int64_t>(data.dim / 3, 1);
  const double dtype = run.model.dtype == config::DType::float64 ? 8 : 4;
  // A rank's frames hold its share of the atoms and at most one frame more than their share of the frames'.
  const double largest_frame = static_cast<double>(data.atoms) / std::max<double>(static_cast<double>(data.rows), 1);
  MemoryEstimate e;
  e.data = (share(data.atoms, ranks) + largest_frame) * kFrameAtomBytes + share(data.rows, ranks) * kFrameBytes;
  e.data +=
      share(data.test_atoms, ranks) * (kFrameAtomBytes + 3 * 8) + share(data.test_rows, ranks) * (kFrameBytes + 9 * 8);
  const double rows = static_cast<double>(data.rows);
  const bool mini_batches = run.train.batch_size > 0 && run.train.batch_size < data.rows;
  e.buffers = 3 * share(data.rows, ranks) * kRowIndexBytes + (mini_batches ? rows * kRowIndexBytes : 0) +
              (run.train.val_fraction > 0 ? rows : 0);
  const model::NetworkShape networks = model::network_shape(run.model, data.dim);
  const int64_t width = model::descriptor::FrameDescriptor::width_of(run.model.descriptor, elements);
  const int64_t chunk_atoms =
      run.train.chunk_rows > 0
          ? run.train.chunk_rows
          : model::default_chunk_rows(width, networks.widest(), model::torch_dtype(run.model.dtype), device);
  const double models = static_cast<double>(std::max<int64_t>(members, 1));
  const double parameters = static_cast<double>(model::parameter_count(run.model, data.dim));
  e.model = models * parameters * dtype * (parameter_copies(run.optimizer) + (run.train.ema_decay > 0 ? 1 : 0));
  const double atoms = static_cast<double>(chunk_atoms);
  e.chunks = models * static_cast<double>(elements) * atoms *
                 static_cast<double>(model::buffer_elements_per_row(width, networks.widest())) * dtype +
             atoms * (6 * static_cast<double>(width) * kFloat64Bytes + kFramesNeighbours * kNeighbourBytes);
  return e;
}

}  // namespace

MemoryEstimate estimate_memory(const config::RunSpec& run, const DataShape& data, int group_ranks, int64_t members,
                               torch::Device device) {
  if (data.atoms > 0) return frames_estimate(run, data, group_ranks, members, device);
  const Sizes s = sizes_of(run, data, group_ranks);
  const bool on_gpu = !device.is_cpu();
  const double models = static_cast<double>(std::max<int64_t>(members, 1));
  MemoryEstimate e;
  const int64_t ranks = std::max(group_ranks, 1);
  const double test_shard = static_cast<double>(data.test_rows / ranks + (data.test_rows % ranks != 0 ? 1 : 0));
  e.data = s.shard * s.row_bytes + test_shard * (3 * s.dim + 2) * s.dtype;
  e.buffers = reading_bytes(run.data, s) + batch_bytes(s, on_gpu);
  if (on_gpu) return e;
  const double parameters = static_cast<double>(model::parameter_count(run.model, data.dim));
  const double ema = run.train.ema_decay > 0 ? 1 : 0;  // the moving average
  e.model = models * parameters * s.dtype * (parameter_copies(run.optimizer) + ema);
  e.chunks = models * chunk_bytes(run, s, data.dim, device);
  return e;
}

std::string MemoryEstimate::text() const {
  return "~" + bytes_text(total()) + " of memory per rank (data shard " + bytes_text(data) + ", buffers " +
         bytes_text(buffers) + ", model " + bytes_text(model) + ", chunks " + bytes_text(chunks) + ", runtime " +
         bytes_text(runtime) + ")";
}

std::string bytes_text(double bytes) {
  static const char* const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  size_t unit = 0;
  while (bytes >= 999.5 && unit + 1 < std::size(units)) bytes /= 1000, ++unit;
  char text[32];
  if (unit == 0 || bytes >= 9.95)
    std::snprintf(text, sizeof(text), "%.0f %s", bytes, units[unit]);
  else
    std::snprintf(text, sizeof(text), "%.1f %s", bytes, units[unit]);
  return text;
}

}  // namespace gradfit::train
