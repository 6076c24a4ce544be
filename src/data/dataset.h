#pragma once
// The gradient samples one rank trains on: its contiguous shard of the N rows, from a built-in target or a user's
// HDF5 file (datasets x: N×n, grad: N×n, optional value: N).
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/frames.h"
#include "model/features.h"
#include "model/standardization.h"
#include "parallel/comm.h"
#include "parallel/shard.h"

namespace gradfit::io {
class File;
}  // namespace gradfit::io

namespace gradfit::data {

struct Dataset {
  torch::Tensor x;             // shard.count × n, points
  torch::Tensor grad_samples;  // shard.count × n, the gradient dV/dx sampled at x; undefined without (load_points)
  torch::Tensor values;        // shard.count, V at x; undefined when the data has no values
  // shard.count, the rows' weights in the loss (a file's `weight` dataset, >= 0), normalized by their mean over the
  // training rows before training (train/standardization_fit.h); undefined without.
  torch::Tensor weights;
  int64_t total_rows = 0;        // N, over all ranks
  int64_t dim = 0;               // n
  parallel::Shard shard;         // the rows this rank holds
  std::string description;       // for the log: "quadratic, grid of 10^2 points" or the file path
  std::vector<int64_t> numbers;  // a file's attribute `numbers` (atomic numbers, e.g. from ase_import.py); or none
  // data.standardize: the transform x, grad_samples and values have been through (train/standardization_fit.h);
  // inactive (the identity) when they are in the user's units.
  model::Standardization standardization;
  // scripts/ase_import.py's frames layout (frames of any atoms, periodic cells; data/frames.h): this rank's frames,
  // whole and balanced on atoms, their atoms in float64; null for the fixed layout. Its rows are the frames: the
  // shard, total_rows, values (one energy per frame) and frame_rows count frames; x and grad_samples are undefined;
  // `numbers` are the elements of all frames (ascending) and dim = 3 × their count: the model's inputs as a
  // structure of one atom of each element, which is all the model needs to know of the data.
  std::shared_ptr<const Frames> frames;
  torch::Tensor frame_rows;            // the frames layout: 0, 1, ..., shard.count − 1 (int64, CPU)
  torch::TensorOptions frame_options;  // the frames layout: the dtype and device of values and the model
  bool is_frames() const { return frames != nullptr; }
  torch::TensorOptions options() const { return is_frames() ? frame_options : x.options(); }
  bool has_values() const { return values.defined(); }
  bool has_grad_samples() const { return grad_samples.defined(); }
  bool has_weights() const { return weights.defined(); }
};

// The largest |coordinate| (Å) of a file whose columns are atoms' coordinates (it has the attribute `numbers`): no
// physical structure reaches 1e6 Å (0.1 mm; the largest simulated boxes are ~1e4 Å), so a larger value is a unit or
// format mistake. scripts/ase_import.py applies the same bound.
constexpr double kMaxCoordinate = 1e6;
// Atomic numbers a file's attribute `numbers` may hold (ASE's dummy atom X is 0).
constexpr int64_t kMaxAtomicNumber = 118;

// Rows read from files (as float64) and checked a block at a time, so that the transient memory stays small
// whatever N is.
constexpr int64_t kReadRows = int64_t{1} << 16;
// Rows of a built-in target generated and differentiated (in float64) a block at a time.
constexpr int64_t kGenerateRows = int64_t{1} << 12;

// The shape of a user's data file, validated (missing datasets, shapes, element types, N = 0) without reading it.
struct FileLayout {
  int64_t rows = 0;  // N
  int64_t dim = 0;   // n
  bool has_values = false;
  bool has_grad = false;
  bool has_weights = false;      // a `weight` dataset (N); read for training only
  std::vector<int64_t> numbers;  // the attribute `numbers` (atomic numbers), empty without
  // The frames layout: rows are its frames, dim = 3 × its elements and numbers those elements (as Dataset's), and
  // `atoms` the atoms of all frames.
  bool frames = false;
  int64_t atoms = 0;
};
// Throws DataError naming the file and dataset. Single rank.
FileLayout inspect_file(const std::string& path);
// "(7, 3)": a dataset's shape, as the data's messages write it.
std::string shape_text(const std::vector<int64_t>& shape);
// Whether the file holds scripts/ase_import.py's frames layout (attribute layout = "frames").
bool holds_frames(const io::File& file);
// Throws DataError naming the file when it holds scripts/ase_import.py's frames layout (attribute layout =
// "frames": frames of any atoms, periodic cells), where a caller reads only the fixed layout. Single rank.
void check_fixed_layout(const io::File& file);

// File shapes by path, each file inspected once.
using FileLayouts = std::map<std::string, FileLayout>;
// The shape of `path`, inspected on first use (inspect_file's errors). Single rank.
const FileLayout& layout_of(FileLayouts& layouts, const std::string& path);

// Builds or reads this rank's shard, in `dtype`, on `device`. Reads only the shard's rows from a file. Validates
// shapes, element types, N = 0, NaN/Inf and, in a file with atoms, atomic numbers and coordinates, throwing a
// CollectiveError that names the file and dataset: every rank throws the same error. Collective over `comm`.
Dataset load_dataset(const config::DataSpec& spec, torch::Dtype dtype, const parallel::Comm& comm,
                     torch::Device device = torch::kCPU);

// The points to evaluate a model at: like load_dataset for a user's file (spec.target == file), except that
// `grad` is optional (grad_samples stays undefined without it); `x` is required, `value` read where present.
// Collective over `comm`; errors are CollectiveErrors naming the file and dataset.
Dataset load_points(const config::DataSpec& spec, torch::Dtype dtype, const parallel::Comm& comm);

// This rank's shard of the data file `path` for a model of `model` (eval's points, data.test_path's): in its dtype,
// on the CPU, every row checked as training checks its data (finite, the coordinates of a file with atoms, the rows
// the features cannot take: check_feature_rows). A file of the frames layout is read as load_dataset reads it
// (its gradient required), its frames checked for the model's elements and cutoffs (check_frame_geometry). Collective
// over `comm`; errors are CollectiveErrors naming the file and row.
Dataset load_points_for(const config::ModelSpec& model, const std::string& path, const parallel::Comm& comm);

// The rows the features cannot take (model::FeatureMap::first_problem: for inverse_distances two atoms at one
// place): a CollectiveError naming the data's first such row over all ranks (the lowest rank holds the lowest rows)
// and the kind's reason. `data.x` as loaded (not standardized). Collective over `comm`.
void check_feature_rows(const Dataset& data, const model::Features& features, const parallel::Comm& comm);

// The frames layout: every atom is of one of `elements` (a model's), every frame's neighbours within the
// descriptor's cutoffs can be found and no two atoms (or an atom and an image) are closer than
// model::descriptor::kMinDistance; else a CollectiveError naming the file, the first such frame over all ranks and
// the reason (from the rank that holds it). Collective over `comm`.
void check_frame_geometry(const Dataset& data, const config::AtomCenteredSpec& spec,
                          const std::vector<int64_t>& elements, const parallel::Comm& comm);

}  // namespace gradfit::data
