#include "train/optimizer.h"

#include <cmath>
#include <sstream>

#include "common/error.h"

namespace gradfit::train {

FlatOptimizer::FlatOptimizer(const config::OptimizerSpec& spec, torch::Tensor params)
    : spec_(spec), params_(std::move(params)) {
  first_ = torch::zeros_like(params_);
  if (spec_.name == config::Optimizer::adam) {
    second_ = torch::zeros_like(params_);
    scratch_ = torch::empty_like(params_);
  }
}

void FlatOptimizer::step(const torch::Tensor& grad) {
  torch::NoGradGuard no_grad;
  ++steps_;
  if (spec_.name == config::Optimizer::adam) {  // betas (0.9, 0.999), eps 1e-8: LibTorch's defaults
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    const double correction1 = 1 - std::pow(beta1, static_cast<double>(steps_));
    const double correction2 = 1 - std::pow(beta2, static_cast<double>(steps_));
    first_.mul_(beta1).add_(grad, 1 - beta1);
    second_.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    at::sqrt_out(scratch_, second_);
    scratch_.div_(std::sqrt(correction2)).add_(eps);
    params_.addcdiv_(first_, scratch_, -spec_.lr / correction1);
    return;
  }
  if (spec_.momentum == 0) {
    params_.add_(grad, -spec_.lr);
    return;
  }
  if (steps_ == 1)
    first_.copy_(grad);
  else
    first_.mul_(spec_.momentum).add_(grad);  // dampening 0
  params_.add_(first_, -spec_.lr);
}

std::string FlatOptimizer::save() const {
  torch::serialize::OutputArchive archive;
  archive.write("steps", torch::tensor(steps_));
  archive.write("first", first_.cpu());
  if (second_.defined()) archive.write("second", second_.cpu());
  std::ostringstream bytes;
  archive.save_to(bytes);
  return bytes.str();
}

void FlatOptimizer::load(const std::string& bytes, torch::Device device) {
  torch::serialize::InputArchive archive;
  torch::Tensor steps, first, second;
  try {
    std::istringstream in(bytes);
    archive.load_from(in, device);
    archive.read("steps", steps);
    archive.read("first", first);
    if (second_.defined()) archive.read("second", second);
  } catch (const c10::Error& e) {
    throw Error("optimizer state in the checkpoint is not readable by this version of gradfit_dist");
  }
  if (first.numel() != first_.numel() || (second_.defined() && second.numel() != second_.numel()))
    throw Error("optimizer state in the checkpoint does not match the model's parameter count");
  torch::NoGradGuard no_grad;
  steps_ = steps.item<int64_t>();
  first_.copy_(first.view_as(first_));
  if (second_.defined()) second_.copy_(second.view_as(second_));
}

torch::Tensor flatten_parameters(std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  auto flat = torch::empty({total}, params.empty() ? torch::TensorOptions() : params.front().options());
  int64_t offset = 0;
  for (auto& p : params) {
    auto view = flat.narrow(0, offset, p.numel()).view_as(p);
    view.copy_(p);
    p.set_data(view);
    offset += p.numel();
  }
  return flat;
}

}  // namespace gradfit::train
