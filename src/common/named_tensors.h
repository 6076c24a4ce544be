#pragma once
// Tensors by name: a model's parameters ("weight0", "bias0", ...) as the optimizer, the checkpoints, the results
// file and the standardization's re-expression of weights all see them. Here, below every folder that uses them.
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace gradfit {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

}  // namespace gradfit
