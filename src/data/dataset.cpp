#include "data/dataset.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "common/error.h"
#include "data/targets.h"
#include "io/h5.h"
#include "model/features_atom_centered.h"
#include "model/frame_descriptor.h"
#include "model/mlp.h"
#include "parallel/agree.h"

namespace gradfit::data {
namespace {

using config::DataSpec;

[[noreturn]] void fail(const std::string& message) {
  throw DataError(message);
}

io::DatasetInfo checked_info(const io::File& file, const std::string& name) {
  if (!file.has(name)) fail(file.path() + ": missing dataset '" + name + "'");
  io::DatasetInfo info = file.dataset_info(name);
  if (info.type_class != H5T_FLOAT && info.type_class != H5T_INTEGER)
    fail(file.path() + ": dataset '" + name + "' must hold numbers (float or integer)");
  return info;
}

// This rank's shard of a dataset, in `dtype`: read (as float64) and converted a block of rows at a time.
torch::Tensor rows_tensor(const io::File& file, const std::string& name, const parallel::Shard& shard, int64_t cols,
                          torch::Dtype dtype) {
  auto t = torch::empty({shard.count, cols}, dtype);
  for (int64_t first = 0; first < shard.count; first += kReadRows) {
    const int64_t rows = std::min(kReadRows, shard.count - first);
    auto values = file.read_rows(name, shard.begin + first, rows);
    t.narrow(0, first, rows).copy_(torch::from_blob(values.data(), {rows, cols}, torch::kFloat64));
  }
  return t;
}

io::File open_file(const std::string& path) {
  try {
    return io::File::open_read_only(path);
  } catch (const IoError& e) {
    fail(e.what());
  }
}

// The attribute `numbers`: the atoms whose coordinates x holds, 3 columns each, each an element.
std::vector<int64_t> checked_numbers(const io::File& file, int64_t dim) {
  auto numbers = file.read_int_vector_attribute("numbers");
  if (3 * static_cast<int64_t>(numbers.size()) != dim)
    fail(file.path() + ": attribute 'numbers' names " + std::to_string(numbers.size()) +
         " atoms, but 'x' has n = " + std::to_string(dim) + " columns (3 per atom)");
  for (size_t i = 0; i < numbers.size(); ++i)
    if (numbers[i] < 1 || numbers[i] > kMaxAtomicNumber)
      fail(file.path() + ": attribute 'numbers': atom " + std::to_string(i) + " has atomic number " +
           std::to_string(numbers[i]) + ", not an element (1 to " + std::to_string(kMaxAtomicNumber) + ")");
  return numbers;
}

// Whether a file must hold gradient samples: to train on, yes; to evaluate a model at its points, no.
enum class GradSamples { required, optional };

}  // namespace

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

bool holds_frames(const io::File& file) {
  return file.has_attribute("layout") && file.read_string_attribute("layout") == "frames";
}

void check_fixed_layout(const io::File& file) {
  if (holds_frames(file))
    fail(file.path() +
         " holds frames of any atoms or with periodic cells (scripts/ase_import.py's frames layout), "
         "which only training reads yet: to evaluate, import frames of one molecule, with no cell, in the "
         "fixed layout (ase_import.py --layout fixed)");
}

namespace {

FileLayout inspect_frames_file(const std::string& path) {
  const FramesLayout frames = inspect_frames(path);
  FileLayout layout;
  layout.rows = frames.frames;
  layout.dim = 3 * static_cast<int64_t>(frames.elements.size());
  layout.has_values = frames.has_values;
  layout.has_grad = true;
  layout.numbers = frames.elements;
  layout.frames = true;
  layout.atoms = frames.atoms;
  return layout;
}

FileLayout inspect(const io::File& file, GradSamples grad_samples) {
  const std::string& path = file.path();
  if (grad_samples == GradSamples::required && holds_frames(file)) return inspect_frames_file(path);
  check_fixed_layout(file);
  const auto x_info = checked_info(file, "x");
  if (x_info.shape.size() != 2) fail(path + ": dataset 'x' must be 2-D (N×n), got shape " + shape_text(x_info.shape));
  FileLayout layout;
  layout.has_grad = grad_samples == GradSamples::required || file.has("grad");
  if (layout.has_grad) {
    const auto g_info = checked_info(file, "grad");
    if (g_info.shape != x_info.shape)
      fail(path + ": dataset 'grad' has shape " + shape_text(g_info.shape) + " but 'x' has " +
           shape_text(x_info.shape) + "; they must match (N×n)");
  }
  layout.rows = x_info.shape[0];
  layout.dim = x_info.shape[1];
  if (layout.rows == 0) fail(path + ": dataset 'x' has no rows (N = 0)");
  if (layout.dim == 0) fail(path + ": dataset 'x' has no columns (n = 0)");
  layout.has_values = file.has("value");
  layout.has_weights = grad_samples == GradSamples::required && file.has("weight");
  for (const auto& [name, present] :
       {std::pair<std::string, bool>{"value", layout.has_values}, {"weight", layout.has_weights}}) {
    if (!present) continue;
    const auto info = checked_info(file, name);
    const bool column = info.shape.size() == 2 && info.shape[1] == 1;
    if (!(info.shape.size() == 1 || column) || info.shape[0] != layout.rows)
      fail(path + ": dataset '" + name + "' has shape " + shape_text(info.shape) + "; expected (" +
           std::to_string(layout.rows) + ") to match 'x'");
  }
  if (file.has_attribute("numbers")) layout.numbers = checked_numbers(file, layout.dim);
  return layout;
}

Dataset read_file(const DataSpec& spec, const parallel::Comm& comm, torch::Dtype dtype, GradSamples grad_samples) {
  const io::File file = open_file(spec.path);
  const FileLayout layout = inspect(file, grad_samples);
  Dataset d;
  d.total_rows = layout.rows;
  d.dim = layout.dim;
  d.shard = parallel::shard_of(d.total_rows, comm.rank(), comm.size());
  d.x = rows_tensor(file, "x", d.shard, d.dim, dtype);
  if (layout.has_grad) d.grad_samples = rows_tensor(file, "grad", d.shard, d.dim, dtype);
  if (layout.has_values) d.values = rows_tensor(file, "value", d.shard, 1, dtype).view({-1});
  if (layout.has_weights) d.weights = rows_tensor(file, "weight", d.shard, 1, dtype).view({-1});
  d.description = spec.path;
  d.numbers = layout.numbers;
  return d;
}

// The shard of a built-in target, in `dtype`. Rows are generated and differentiated (in float64) a block at a time,
// so memory beyond the shard itself stays small whatever N is; each row depends on its index alone.
Dataset generate(const DataSpec& spec, const parallel::Comm& comm, torch::Dtype dtype) {
  Dataset d;
  d.total_rows = config::analytic_sample_count(spec);
  d.dim = spec.dim;
  d.shard = parallel::shard_of(d.total_rows, comm.rank(), comm.size());
  d.x = torch::empty({d.shard.count, d.dim}, dtype);
  d.grad_samples = torch::empty({d.shard.count, d.dim}, dtype);
  d.values = torch::empty({d.shard.count}, dtype);
  for (int64_t first = 0; first < d.shard.count; first += kGenerateRows) {
    const int64_t rows = std::min(kGenerateRows, d.shard.count - first);
    auto x = sample_points(spec, d.shard.begin + first, rows).requires_grad_(true);
    auto v = potential(spec, x);
    const auto grad = torch::autograd::grad({v}, {x}, /*grad_outputs=*/{torch::ones_like(v)})[0];
    d.x.narrow(0, first, rows).copy_(x.detach());
    d.grad_samples.narrow(0, first, rows).copy_(grad);
    d.values.narrow(0, first, rows).copy_(v.detach());
  }
  d.description = std::string(config::to_string(spec.target)) + ", " + config::to_string(spec.sampling) + " of " +
                  std::to_string(d.total_rows) + " points in " + std::to_string(d.dim) + "-D";
  return d;
}

// Finds the first row, over all ranks, whose x, grad, value or weight holds NaN or Inf (or a negative weight);
// every rank learns it.
void check_finite(const Dataset& d, const std::string& source, const parallel::Comm& comm) {
  const char* names[] = {"x", "grad", "value", "weight"};
  const torch::Tensor tensors[] = {d.x, d.grad_samples, d.has_values() ? d.values.view({-1, 1}) : torch::Tensor(),
                                   d.has_weights() ? d.weights.view({-1, 1}) : torch::Tensor()};
  int64_t first_bad = std::numeric_limits<int64_t>::max();  // encoded as dataset * N + row
  for (int64_t k = 0; k < 4; ++k) {
    if (!tensors[k].defined() || tensors[k].numel() == 0) continue;
    for (int64_t first = 0; first < tensors[k].size(0); first += kReadRows) {  // a block at a time
      const auto block = tensors[k].narrow(0, first, std::min(kReadRows, tensors[k].size(0) - first));
      const auto bad = k == 3 ? ~torch::isfinite(block) | (block < 0) : ~torch::isfinite(block);
      const auto bad_rows = bad.any(1).nonzero();
      if (bad_rows.numel() > 0) {
        first_bad = std::min(first_bad, k * d.total_rows + d.shard.begin + first + bad_rows[0][0].item<int64_t>());
        break;
      }
    }
  }
  first_bad = comm.allreduce_min(first_bad);
  if (first_bad == std::numeric_limits<int64_t>::max()) return;
  // The data are checked in the model's dtype: a finite float64 number beyond float32's range is Inf there.
  const bool float32 = d.x.scalar_type() == torch::kFloat32;
  // Every rank agreed on the row through the allreduce, so every rank throws this.
  const int64_t k = first_bad / d.total_rows;
  throw CollectiveError(source + ": dataset '" + names[k] + "' has " +
                        (k == 3 ? "a negative number, NaN or Inf" : "NaN or Inf") + " in row " +
                        std::to_string(first_bad % d.total_rows) +
                        (float32 ? " (in float32: beyond ±3.4e38 counts too)" : ""));
}

// A file with atoms (attribute `numbers`): the first row, over all ranks, with a coordinate beyond kMaxCoordinate;
// every rank learns it. Run after check_finite. Every rank read the same attribute, so all return here alike.
void check_coordinates(const Dataset& d, const std::string& source, const parallel::Comm& comm) {
  if (d.numbers.empty()) return;
  int64_t first_bad = std::numeric_limits<int64_t>::max();
  for (int64_t first = 0; first < d.shard.count; first += kReadRows) {  // a block at a time
    const auto block = d.x.narrow(0, first, std::min(kReadRows, d.shard.count - first));
    const auto bad_rows = (block.abs() > kMaxCoordinate).any(1).nonzero();
    if (bad_rows.numel() == 0) continue;
    first_bad = d.shard.begin + first + bad_rows[0][0].item<int64_t>();
    break;
  }
  first_bad = comm.allreduce_min(first_bad);
  if (first_bad == std::numeric_limits<int64_t>::max()) return;
  // The row's largest coordinate, from the one rank that holds the row (0 elsewhere), for the message every rank
  // throws.
  double largest = 0;
  if (first_bad >= d.shard.begin && first_bad < d.shard.begin + d.shard.count)
    largest = d.x[first_bad - d.shard.begin].abs().max().item<double>();
  comm.allreduce_sum(&largest, 1);
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", largest);
  static_assert(kMaxCoordinate == 1e6, "the message below states the bound");
  throw CollectiveError(source + ": dataset 'x' row " + std::to_string(first_bad) + ": a coordinate of " + text +
                        " Å, beyond ±1e6 Å, which no physical structure reaches (the file's columns are atoms' "
                        "coordinates: attribute 'numbers')");
}

// The frames layout: the first frame, over all ranks, whose positions, gradient or energy hold NaN or Inf or
// whose coordinates go beyond kMaxCoordinate, named in one CollectiveError that every rank throws.
void check_frames(const Frames& frames, const std::string& path, const parallel::Comm& comm) {
  const char* what[] = {"dataset 'positions' has NaN or Inf", "dataset 'grad' has NaN or Inf",
                        "dataset 'value' has NaN or Inf",
                        "dataset 'positions': a coordinate beyond ±1e6 Å, which no physical structure reaches"};
  static_assert(kMaxCoordinate == 1e6, "the message above states the bound");
  int64_t first_bad = std::numeric_limits<int64_t>::max();  // encoded as frame * 4 + the problem's index in `what`
  for (size_t f = 0, atom = 0; f < frames.atoms.size() && first_bad == std::numeric_limits<int64_t>::max(); ++f) {
    int problem = -1;
    for (size_t k = 3 * atom; k < 3 * (atom + static_cast<size_t>(frames.atoms[f])) && problem < 0; ++k)
      problem = !std::isfinite(frames.positions[k])              ? 0
                : !std::isfinite(frames.grad[k])                 ? 1
                : std::abs(frames.positions[k]) > kMaxCoordinate ? 3
                                                                 : -1;
    if (problem < 0 && !frames.values.empty() && !std::isfinite(frames.values[f])) problem = 2;
    if (problem >= 0) first_bad = (frames.shard.first_frame + static_cast<int64_t>(f)) * 4 + problem;
    atom += static_cast<size_t>(frames.atoms[f]);
  }
  first_bad = comm.allreduce_min(first_bad);
  if (first_bad == std::numeric_limits<int64_t>::max()) return;
  throw CollectiveError(path + ": frame " + std::to_string(first_bad / 4) + ": " + what[first_bad % 4]);
}

// The elements of all ranks' frames, ascending: one allreduce of a flag per atomic number.
std::vector<int64_t> frames_elements(const Frames& frames, const parallel::Comm& comm) {
  std::vector<double> present(kMaxAtomicNumber + 1, 0.0);
  for (const int64_t z : frames.numbers) present[static_cast<size_t>(z)] = 1;
  comm.allreduce_sum(present.data(), static_cast<int64_t>(present.size()));
  std::vector<int64_t> elements;
  for (int64_t z = 1; z <= kMaxAtomicNumber; ++z)
    if (present[static_cast<size_t>(z)] > 0) elements.push_back(z);
  return elements;
}

// This rank's frames of the frames layout as a Dataset (Dataset::frames), checked. Collective over `comm`.
Dataset load_frames(const DataSpec& spec, torch::Dtype dtype, const parallel::Comm& comm, torch::Device device) {
  auto frames = std::make_shared<Frames>();
  parallel::all_or_none(comm, true, [&] { *frames = read_frames(spec.path, comm.rank(), comm.size()); });
  check_frames(*frames, spec.path, comm);
  Dataset d;
  d.total_rows = frames->total_frames;
  d.shard = {frames->shard.first_frame, frames->shard.frames};
  d.numbers = frames_elements(*frames, comm);
  d.dim = 3 * static_cast<int64_t>(d.numbers.size());
  d.frame_options = torch::TensorOptions().dtype(dtype).device(device);
  d.frame_rows = torch::arange(d.shard.count, torch::kInt64);
  if (!frames->values.empty()) d.values = torch::tensor(frames->values, torch::kFloat64).to(d.frame_options);
  d.description = spec.path;
  d.frames = std::move(frames);
  return d;
}

bool is_frames_file(const DataSpec& spec) {
  return spec.target == config::Target::file && holds_frames(open_file(spec.path));
}

}  // namespace

void check_feature_rows(const Dataset& data, const model::Features& features, const parallel::Comm& comm) {
  parallel::all_or_none(comm, true, [&] {
    constexpr int64_t kRows = 4096;  // a block's features at a time, whatever the shard's size
    for (int64_t first = 0; first < data.shard.count; first += kRows) {
      const auto hit = features.first_problem(data.x.narrow(0, first, std::min(kRows, data.shard.count - first)));
      if (hit.row < 0) continue;
      throw DataError(data.description + ": row " + std::to_string(data.shard.begin + first + hit.row) + ": " +
                      hit.what);
    }
  });
}

void check_frame_geometry(const Dataset& data, const config::AtomCenteredSpec& spec,
                          const std::vector<int64_t>& elements, const parallel::Comm& comm) {
  const Frames& frames = *data.frames;
  int64_t first_bad = std::numeric_limits<int64_t>::max();
  std::string reason;
  for (size_t f = 0, atom = 0; f < frames.atoms.size(); atom += static_cast<size_t>(frames.atoms[f]), ++f) {
    try {
      const std::vector<int64_t> numbers(frames.numbers.begin() + static_cast<int64_t>(atom),
                                         frames.numbers.begin() + static_cast<int64_t>(atom) + frames.atoms[f]);
      model::descriptor::FrameDescriptor(spec, elements, numbers, frames.positions.data() + 3 * atom, frames.cells[f]);
    } catch (const std::invalid_argument& e) {
      first_bad = data.shard.begin + static_cast<int64_t>(f);
      reason = e.what();
      break;
    }
  }
  parallel::all_or_none(comm, true, [&] {
    if (first_bad != std::numeric_limits<int64_t>::max())
      throw DataError(data.description + ": frame " + std::to_string(first_bad) + ": " + reason);
  });
}

Dataset load_points_for(const config::ModelSpec& model, const std::string& path, const parallel::Comm& comm) {
  DataSpec spec;
  spec.target = config::Target::file;
  spec.path = path;
  bool frames = false;
  parallel::all_or_none(comm, true, [&] { frames = is_frames_file(spec); });
  if (frames) {
    if (model.features != config::FeatureKind::atom_centered)
      throw CollectiveError(path +
                            " holds frames of any atoms or periodic cells (the frames layout), which only a "
                            "model of features atom_centered takes, not " +
                            config::to_string(model.features));
    auto points = load_frames(spec, model::torch_dtype(model.dtype), comm, torch::kCPU);
    check_frame_geometry(points, model.descriptor,
                         model.elements.empty() ? model::distinct_elements(model.numbers) : model.elements, comm);
    return points;
  }
  auto points = load_points(spec, model::torch_dtype(model.dtype), comm);
  check_feature_rows(points, model::Features(model, points.dim), comm);
  return points;
}

FileLayout inspect_file(const std::string& path) {
  return inspect(open_file(path), GradSamples::required);
}

const FileLayout& layout_of(FileLayouts& layouts, const std::string& path) {
  auto it = layouts.find(path);
  if (it == layouts.end()) it = layouts.emplace(path, inspect_file(path)).first;
  return it->second;
}

Dataset load_dataset(const DataSpec& spec, torch::Dtype dtype, const parallel::Comm& comm, torch::Device device) {
  bool frames = false;
  parallel::all_or_none(comm, true, [&] { frames = is_frames_file(spec); });
  if (frames) return load_frames(spec, dtype, comm, device);
  Dataset d;
  parallel::all_or_none(comm, true, [&] {  // a rank may fail alone here (a damaged block of its rows)
    d = spec.target == config::Target::file ? read_file(spec, comm, dtype, GradSamples::required)
                                            : generate(spec, comm, dtype);
  });
  check_finite(
      d, spec.target == config::Target::file ? spec.path : "data.target " + std::string(config::to_string(spec.target)),
      comm);
  check_coordinates(d, spec.path, comm);
  d.x = d.x.to(device, dtype);
  d.grad_samples = d.grad_samples.to(device, dtype);
  if (d.has_values()) d.values = d.values.to(device, dtype);
  if (d.has_weights()) d.weights = d.weights.to(device, dtype);
  return d;
}

Dataset load_points(const DataSpec& spec, torch::Dtype dtype, const parallel::Comm& comm) {
  Dataset d;
  parallel::all_or_none(comm, true, [&] { d = read_file(spec, comm, dtype, GradSamples::optional); });
  check_finite(d, spec.path, comm);
  check_coordinates(d, spec.path, comm);
  return d;
}

}  // namespace gradfit::data
