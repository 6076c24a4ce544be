#include "model/mlp.h"

#include <utility>

namespace gradfit::model {

MlpImpl::MlpImpl(Features features, const std::vector<int64_t>& widths, config::Activation activation)
    : layers_(register_module("layers", torch::nn::ModuleList())),
      activation_(activation),
      features_(std::move(features)) {
  int64_t in = features_.dim();
  for (const int64_t width : widths) {
    linears_.emplace_back(in, width);
    in = width;
  }
  linears_.emplace_back(in, 1);
  for (const auto& linear : linears_) layers_->push_back(linear);
}

void MlpImpl::set_features(Features features) {
  TORCH_CHECK(features.dim() == features_.dim(), "Mlp::set_features: ", features.dim(), " features for a model of ",
              features_.dim(), " inputs");
  features_ = std::move(features);
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = features_(x);
  const size_t last = linears_.size() - 1;
  for (size_t i = 0; i < last; ++i) {
    h = linears_[i]->forward(h);
    switch (activation_) {
      case config::Activation::relu: h = torch::relu(h); break;
      case config::Activation::tanh: h = torch::tanh(h); break;
      case config::Activation::softplus: h = torch::softplus(h); break;
      case config::Activation::silu: h = torch::silu(h); break;
      case config::Activation::gelu: h = torch::gelu(h); break;
    }
  }
  return linears_[last]->forward(h).squeeze(1);
}

torch::Dtype torch_dtype(config::DType dtype) {
  return dtype == config::DType::float64 ? torch::kFloat64 : torch::kFloat32;
}

Mlp make_mlp(const config::ModelSpec& spec, int64_t input_dim, uint64_t seed) {
  torch::manual_seed(seed);
  Mlp model(Features(spec, input_dim), spec.widths, spec.activation);
  model->to(torch_dtype(spec.dtype));
  return model;
}

int64_t parameter_count(const config::ModelSpec& spec, int64_t input_dim) {
  int64_t count = 0, in = feature_dim(spec, input_dim);
  for (const int64_t width : spec.widths) {
    count += in * width + width;  // weight width×in, bias width
    in = width;
  }
  return count + in + 1;  // the output layer: weight 1×in, bias 1
}

std::string architecture(const config::ModelSpec& spec, int64_t input_dim) {
  std::string text = std::to_string(feature_dim(spec, input_dim));
  if (spec.features != config::Features::identity)
    text = std::string(config::to_string(spec.features)) + "(" + std::to_string(input_dim) + ")-" + text;
  for (const int64_t w : spec.widths) text += "-" + std::to_string(w);
  return text + "-1";
}

}  // namespace gradfit::model
