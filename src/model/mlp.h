#pragma once
// The potential V(x): a multilayer perceptron R^m -> R of the features φ(x) of x ∈ R^n (model/features.h); where
// φ is per atom (model.features atom_centered: FeatureMap::atom_layout), the sum over the atoms of one such network
// per element, each of the atom's descriptor: V = Σ_i NN_{Z_i}(G_i), the atoms of one element in one product.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "config/config.h"
#include "model/features.h"

namespace gradfit::model {

class MlpImpl : public torch::nn::Module {
 public:
  // φ(x) of `features` in, hidden layers of `widths`, one output; `activation` after every hidden layer. Where φ is
  // per atom, one network per element of the layout, of widths[e] (one entry per element); else widths[0].
  MlpImpl(Features features, const std::vector<std::vector<int64_t>>& widths, config::Activation activation);
  // x: B×n -> V: B, through φ.
  torch::Tensor forward(const torch::Tensor& x);
  const Features& features() const { return features_; }
  // The same features, scaled otherwise (data.standardize): the model's inputs keep their number.
  void set_features(Features features);

  // Layer i of depth(): hidden layers 0..depth()-2, the output layer depth()-1 (weight 1×width, bias 1). Of the one
  // network of a model that has one.
  size_t depth() const { return networks_.front().size(); }
  const torch::nn::Linear& layer(size_t i) const;
  config::Activation activation() const { return activation_; }
  // The networks: one, or one per element (parameters "H.0.weight", ... in ascending atomic number).
  size_t networks() const { return networks_.size(); }

 private:
  // One network on rows of its inputs: B × inputs -> B.
  torch::Tensor network_forward(size_t network, torch::Tensor h);
  // Σ over the atoms of each element's network of their descriptors (h: B × a·w).
  torch::Tensor atoms_forward(const torch::Tensor& h);

  std::vector<std::vector<torch::nn::Linear>> networks_;
  TablesLike atoms_of_element_;  // per element, its atoms (int64), where φ is per atom
  config::Activation activation_;
  Features features_;
};
TORCH_MODULE(Mlp);

// Builds the model of `spec` (its features included) for points of n components, initialised from `seed`
// (LibTorch's default Linear init: as torch.manual_seed(seed), then nn.Linear(m, widths[0]), ...), in `dtype`.
Mlp make_mlp(const config::ModelSpec& spec, int64_t input_dim, uint64_t seed);

torch::Dtype torch_dtype(config::DType dtype);

// The networks of the model of `spec` for points of n components: how many (one per element where φ is per atom)
// and the inputs of each.
struct NetworkShape {
  int64_t count = 1;
  int64_t inputs = 0;
  std::vector<std::vector<int64_t>> widths;  // each network's hidden widths (model.widths, or per element)
  // The hidden widths of the network with the most units (the one whose buffers per row are the largest).
  const std::vector<int64_t>& widest() const;
};
NetworkShape network_shape(const config::ModelSpec& spec, int64_t input_dim);

// The number of parameters (weights and biases) of the model of `spec` for points of n components: the numel
// summed over make_mlp(spec, input_dim, seed)->parameters().
int64_t parameter_count(const config::ModelSpec& spec, int64_t input_dim);

// "2-10-10-1"; with features "inverse_distances(27)-36-64-1" (n in parentheses, then the MLP from m inputs); for
// atom_centered "atom_centered(15)-H,C,O:48-8-8-1" (the elements, then one network's), or with model.element_widths
// "atom_centered(15)-H:48-16-1,C:48-8-8-1,O:48-8-8-1" (each element's network).
std::string architecture(const config::ModelSpec& spec, int64_t input_dim);

}  // namespace gradfit::model
