#pragma once
// Adam and SGD (with momentum) over ONE flat tensor that holds every parameter, so a step is a handful of tensor
// operations whatever the number of layers. The arithmetic is LibTorch's (torch::optim::Adam / SGD, no weight
// decay), element by element. The tensor may hold several runs' parameters, a row each (R × P), each row with its
// own learning rate and momentum: the runs of an ensemble step together, as R optimizers would one by one.
#include <torch/torch.h>

#include <string>

#include "config/config.h"

namespace gradfit::train {

class FlatOptimizer {
 public:
  // `params`: the flat parameter tensor (P, or R × P with one spec per row), updated in place by step(). The
  // specs must name one optimizer.
  FlatOptimizer(const config::OptimizerSpec& spec, torch::Tensor params);
  FlatOptimizer(const std::vector<config::OptimizerSpec>& specs, torch::Tensor params);

  // One step with the flat gradient `grad` (same shape as params).
  void step(const torch::Tensor& grad);

  // The state of row `row` (moments and step count) as bytes, and back; load() puts it on `device`. load() throws
  // Error when the bytes do not hold this optimizer's state for this many parameters. One row's bytes are those
  // of a one-row optimizer, so a run's state moves between an ensemble and a run of its own.
  std::string save(int64_t row = 0) const;
  void load(const std::string& bytes, torch::Device device, int64_t row = 0);

 private:
  std::vector<config::OptimizerSpec> specs_;
  torch::Tensor params_;                    // R × P
  torch::Tensor first_, second_, scratch_;  // Adam: exp_avg, exp_avg_sq, denominator; SGD: momentum buffer
  // Per row (R × 1): the learning rates and the step's factor in float64, that factor in the parameters' dtype,
  // the momenta; and the update.
  torch::Tensor lr_, factor64_, factor_, momentum_, update_;
  int64_t steps_ = 0;
};

// Elements left free after each row of an ensemble's parameters and optimizer state (see optimizer.cpp).
constexpr int64_t kRowGap = 16;

// Makes every parameter a view into one new flat tensor (values kept, order of `params`) and returns it.
torch::Tensor flatten_parameters(std::vector<torch::Tensor>& params);

}  // namespace gradfit::train
