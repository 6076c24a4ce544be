#pragma once
// How much memory one rank needs to train a job: an order of magnitude, known before anything is allocated, so
// that a job that cannot fit a node is refused in one line instead of failing in an allocation on every rank.
//
// It counts what grows with the sizes of the data and the model, plus a rank's footprint before any data, and
// leaves out what stays small (a few blocks of rows, the loss history), so it errs on the side of allowing a job:
//   runtime      kRuntimeBytes: LibTorch, MPI, the code and their threads' stacks (a rank of a run of 300 frames
//                measured 192 MB resident on Debian's LibTorch 1.13 for the CPU; more with CUDA's libraries);
//   data shard   rows × (2n + 1) × dtype: x, grad and values of the largest shard of the group; with
//                data.test_path also the test file's shard as evaluated at a run's end (x, grad, values, and the
//                predictions' copy of grad and values: test rows × (3n + 2) × dtype);
//   buffers      reading or generating the shard a block of rows at a time (float64; the gaussian wells' block of
//                rows × wells × n distances), batch copies (a mini-batch's rows, or the training and validation
//                rows when some are held out), and the lists of rows (8 bytes a row; a mini-batch permutation and
//                the held-out marks are over all N rows, on every rank);
//   model        per ensemble member, parameters × dtype × copies: weights, best weights, gradients, and the
//                optimizer's state (Adam's two moments, SGD's momentum);
//   chunks       per member, the double backward's buffers for one chunk of rows (model/analytic.h): the
//                analytic engine allocates them for train.chunk_rows whatever the batch, autograd per batch chunk.
// On a GPU the model, its chunks and the batch copies live in the GPU's memory: they count zero here, where only
// the host's memory is estimated (the shard passes through it while it is read).
// The frames layout (rows are frames of any atoms): the shard is a rank's atoms (positions and grad in float64,
// numbers) and frames (cell, counts, values and their copies) plus the largest frame, the test file's likewise
// with eval's predictions (dE/dx per atom, energy and virial per frame); the chunks are each element network's
// buffers for train.chunk_rows atoms (every element's, since a chunk may hold one element only) and the chunk's
// descriptor: its values, their copies by element and ∂loss/∂G (6 numbers per descriptor entry) and the
// neighbours, counted as kFramesNeighbours per atom (about condensed matter's within ANI's 5.2 Å).
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "config/config.h"

namespace gradfit::train {

// A run's data before they are read: N, n, and whether there are values (built-in targets always have them) and
// per-sample weights (a file's `weight` dataset).
struct DataShape {
  int64_t rows = 0;  // N
  int64_t dim = 0;   // n
  bool has_values = true;
  bool has_weights = false;
  int64_t test_rows = 0;  // data.test_path's N (its n is the data's); 0: no test file
  // The frames layout: the atoms of all frames (0 for the fixed layout, whose rows hold n / 3 atoms each), and of
  // the test file's; the elements are dim / 3.
  int64_t atoms = 0, test_atoms = 0;
};
// A rank's resident memory before it holds any data (see the top of this file).
inline constexpr double kRuntimeBytes = 200e6;
// Neighbours per atom the estimate counts for the frames layout's chunks (condensed matter holds ~60 within 5.2 Å).
inline constexpr double kFramesNeighbours = 100;

// Bytes of host memory one rank holds at the peak of a job, by part (see the top of this file). Doubles: an
// estimate, in which no product can overflow.
struct MemoryEstimate {
  double data = 0;
  double buffers = 0;
  double model = 0;
  double chunks = 0;
  double runtime = kRuntimeBytes;
  double total() const { return data + buffers + model + chunks + runtime; }
  // "~7.4 TB of memory per rank (data shard 7.3 TB, buffers 80 GB, model 1.2 MB, chunks 8.4 MB, runtime 200 MB)"
  std::string text() const;
};

// One rank of a group of `group_ranks` training `members` runs like `run` as one ensemble on `device`.
MemoryEstimate estimate_memory(const config::RunSpec& run, const DataShape& data, int group_ranks, int64_t members,
                               torch::Device device);

// Bytes in decimal units with two significant digits: "512 B", "8.4 MB", "24 GB", "7.4 TB".
std::string bytes_text(double bytes);

}  // namespace gradfit::train
