#pragma once
// Adam and SGD (with momentum) over ONE flat tensor that holds every parameter, so a step is a handful of tensor
// operations whatever the number of layers. The arithmetic is LibTorch's (torch::optim::Adam / SGD, no weight
// decay), element by element.
#include <torch/torch.h>

#include <string>

#include "config/config.h"

namespace gradfit::train {

class FlatOptimizer {
 public:
  // `params`: the flat parameter tensor, updated in place by step().
  FlatOptimizer(const config::OptimizerSpec& spec, torch::Tensor params);

  // One step with the flat gradient `grad` (same shape as params).
  void step(const torch::Tensor& grad);

  // The state (moments and step count) as bytes, and back; load() puts it on `device`. load() throws Error when
  // the bytes do not hold this optimizer's state for this many parameters.
  std::string save() const;
  void load(const std::string& bytes, torch::Device device);

 private:
  config::OptimizerSpec spec_;
  torch::Tensor params_;
  torch::Tensor first_, second_, scratch_;  // Adam: exp_avg, exp_avg_sq, denominator; SGD: momentum buffer
  int64_t steps_ = 0;
};

// Makes every parameter a view into one new flat tensor (values kept, order of `params`) and returns it.
torch::Tensor flatten_parameters(std::vector<torch::Tensor>& params);

}  // namespace gradfit::train
