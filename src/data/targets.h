#pragma once
// Built-in analytic potentials V(x) and deterministic sample points, for examples and tests.
#include <torch/torch.h>

#include <cstdint>

#include "config/config.h"

namespace gradfit::data {

// Sample points x[row] for rows [begin, begin + count) of the N points that `spec` describes: a grid (row-major,
// last axis fastest) or uniform / normal draws. Row i depends only on (seed, i), never on how rows are sharded.
// Returns count×n float64.
torch::Tensor sample_points(const config::DataSpec& spec, int64_t begin, int64_t count);

// V(x) for the analytic target of `spec`: x is B×n float64, the result has B entries. Differentiable, so the
// gradient samples are its autograd gradient.
torch::Tensor potential(const config::DataSpec& spec, const torch::Tensor& x);

}  // namespace gradfit::data
