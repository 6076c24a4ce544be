#pragma once
// The potential V(x): a multilayer perceptron R^n -> R.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "config/config.h"

namespace gradfit::model {

class MlpImpl : public torch::nn::Module {
 public:
  // n inputs, hidden layers of `widths`, one output; `activation` after every hidden layer.
  MlpImpl(int64_t input_dim, const std::vector<int64_t>& widths, config::Activation activation);
  // x: B×n -> V: B.
  torch::Tensor forward(const torch::Tensor& x);

  // Layer i of depth(): hidden layers 0..depth()-2, the output layer depth()-1 (weight 1×width, bias 1).
  size_t depth() const { return linears_.size(); }
  const torch::nn::Linear& layer(size_t i) const { return linears_[i]; }
  config::Activation activation() const { return activation_; }

 private:
  std::vector<torch::nn::Linear> linears_;
  torch::nn::ModuleList layers_;
  config::Activation activation_;
};
TORCH_MODULE(Mlp);

// Builds the model of `spec` for n inputs, initialised from `seed` (LibTorch's default Linear init), in `dtype`.
Mlp make_mlp(const config::ModelSpec& spec, int64_t input_dim, uint64_t seed);

torch::Dtype torch_dtype(config::DType dtype);

// The number of parameters (weights and biases) of the model of `spec` for n inputs, from the widths alone: the
// numel summed over make_mlp(spec, input_dim, seed)->parameters().
int64_t parameter_count(const config::ModelSpec& spec, int64_t input_dim);

// "2-10-10-1"
std::string architecture(const config::ModelSpec& spec, int64_t input_dim);

}  // namespace gradfit::model
