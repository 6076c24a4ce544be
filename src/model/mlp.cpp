#include "model/mlp.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "model/activation.h"
#include "model/features_atom_centered.h"

namespace gradfit::model {

namespace {

// A network's layers, made in order (inputs -> widths... -> 1) and added to `list`.
std::vector<torch::nn::Linear> make_network(int64_t inputs, const std::vector<int64_t>& widths,
                                            torch::nn::ModuleList list) {
  std::vector<torch::nn::Linear> linears;
  int64_t in = inputs;
  for (const int64_t width : widths) {
    linears.emplace_back(in, width);
    in = width;
  }
  linears.emplace_back(in, 1);
  for (const auto& linear : linears) list->push_back(linear);
  return linears;
}

}  // namespace

MlpImpl::MlpImpl(Features features, const std::vector<std::vector<int64_t>>& widths, config::Activation activation)
    : activation_(activation), features_(std::move(features)) {
  const AtomLayout* atoms = features_.kind().atom_layout();
  if (atoms == nullptr) {
    auto list = register_module("layers", torch::nn::ModuleList());
    networks_.push_back(make_network(features_.dim(), widths.at(0), list));
    return;
  }
  TORCH_CHECK(widths.size() == atoms->elements.size(), "Mlp: widths of ", widths.size(), " networks for ",
              atoms->elements.size(), " elements");
  std::vector<torch::Tensor> atoms_of;
  for (size_t e = 0; e < atoms->elements.size(); ++e) {
    auto list = register_module(element_symbol(atoms->elements[e]), torch::nn::ModuleList());
    networks_.push_back(make_network(atoms->width, widths[e], list));
    std::vector<int64_t> indices;
    for (size_t i = 0; i < atoms->element_of_atom.size(); ++i)
      if (atoms->element_of_atom[i] == static_cast<int64_t>(e)) indices.push_back(static_cast<int64_t>(i));
    atoms_of.push_back(torch::tensor(indices, torch::kInt64));
  }
  atoms_of_element_ = TablesLike(std::move(atoms_of));
}

const torch::nn::Linear& MlpImpl::layer(size_t i) const {
  TORCH_CHECK(networks_.size() == 1, "Mlp::layer: a model of ", networks_.size(), " networks");
  return networks_.front()[i];
}

void MlpImpl::set_features(Features features) {
  TORCH_CHECK(features.dim() == features_.dim(), "Mlp::set_features: ", features.dim(), " features for a model of ",
              features_.dim(), " inputs");
  features_ = std::move(features);
}

torch::Tensor MlpImpl::network_forward(size_t network, torch::Tensor h) {
  auto& linears = networks_[network];
  const size_t last = linears.size() - 1;
  for (size_t i = 0; i < last; ++i) {
    h = linears[i]->forward(h);
    h = activation_of(activation_).value(h);
  }
  return linears[last]->forward(h).squeeze(1);
}

torch::Tensor MlpImpl::atoms_forward(const torch::Tensor& h) {
  const AtomLayout& layout = *features_.kind().atom_layout();
  const int64_t rows = h.size(0), width = layout.width;
  const auto per_atom = h.reshape({rows, static_cast<int64_t>(layout.element_of_atom.size()), width});
  const auto& atoms_of = atoms_of_element_.like(h);
  torch::Tensor v = torch::zeros({rows}, h.options());
  for (size_t e = 0; e < networks_.size(); ++e) {
    const int64_t count = atoms_of[e].size(0);
    const auto inputs = per_atom.index_select(1, atoms_of[e]).reshape({rows * count, width});
    v = v + network_forward(e, inputs).view({rows, count}).sum(1);
  }
  return v;
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  const torch::Tensor h = features_(x);
  return features_.kind().atom_layout() == nullptr ? network_forward(0, h) : atoms_forward(h);
}

torch::Dtype torch_dtype(config::DType dtype) {
  return dtype == config::DType::float64 ? torch::kFloat64 : torch::kFloat32;
}

Mlp make_mlp(const config::ModelSpec& spec, int64_t input_dim, uint64_t seed) {
  torch::manual_seed(seed);
  Mlp model(Features(spec, input_dim), network_shape(spec, input_dim).widths, spec.activation);
  model->to(torch_dtype(spec.dtype));
  return model;
}

const std::vector<int64_t>& NetworkShape::widest() const {
  const auto units = [](const std::vector<int64_t>& w) { return std::accumulate(w.begin(), w.end(), int64_t{0}); };
  return *std::max_element(widths.begin(), widths.end(),
                           [&](const auto& a, const auto& b) { return units(a) < units(b); });
}

NetworkShape network_shape(const config::ModelSpec& spec, int64_t input_dim) {
  const auto features = make_feature_map(spec, input_dim);
  const AtomLayout* atoms = features->atom_layout();
  if (atoms == nullptr) return {1, features->dim(), {spec.widths}};
  NetworkShape shape{static_cast<int64_t>(atoms->elements.size()), atoms->width, {}};
  for (const int64_t z : atoms->elements) shape.widths.push_back(config::network_widths(spec, z));
  return shape;
}

int64_t parameter_count(const config::ModelSpec& spec, int64_t input_dim) {
  const NetworkShape shape = network_shape(spec, input_dim);
  int64_t total = 0;
  for (const auto& widths : shape.widths) {
    int64_t count = 0, in = shape.inputs;
    for (const int64_t width : widths) {
      count += in * width + width;  // weight width×in, bias width
      in = width;
    }
    total += count + in + 1;  // the output layer: weight 1×in, bias 1
  }
  return total;
}

std::string architecture(const config::ModelSpec& spec, int64_t input_dim) {
  const auto features = make_feature_map(spec, input_dim);
  std::string text = std::to_string(features->dim());
  if (!features->is_identity()) text = std::string(features->name()) + "(" + std::to_string(input_dim) + ")-" + text;
  const auto chain = [](const std::vector<int64_t>& widths) {
    std::string out;
    for (const int64_t w : widths) out += "-" + std::to_string(w);
    return out + "-1";
  };
  const AtomLayout* atoms = features->atom_layout();
  if (atoms == nullptr) return text + chain(spec.widths);
  text = std::string(features->name()) + "(" + std::to_string(input_dim) + ")-";
  const std::string width = std::to_string(atoms->width);
  std::string elements;
  for (const int64_t z : atoms->elements) {
    elements += std::string(elements.empty() ? "" : ",") + element_symbol(z);
    if (!spec.element_widths.empty()) elements += ":" + width + chain(config::network_widths(spec, z));
  }
  return text + elements + (spec.element_widths.empty() ? ":" + width + chain(spec.widths) : "");
}

}  // namespace gradfit::model
