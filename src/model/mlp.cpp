#include "model/mlp.h"

#include <utility>

#include "model/activation.h"

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
    h = activation_of(activation_).value(h);
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
  const auto features = make_feature_map(spec, input_dim);
  std::string text = std::to_string(features->dim());
  if (!features->is_identity()) text = std::string(features->name()) + "(" + std::to_string(input_dim) + ")-" + text;
  for (const int64_t w : spec.widths) text += "-" + std::to_string(w);
  return text + "-1";
}

}  // namespace gradfit::model
