#include "model/standardization.h"

#include <gtest/gtest.h>

#include "model/atom_centered_molecule.h"
#include "model/mlp.h"

namespace gradfit::model {
namespace {

Standardization example(std::vector<double> mean, std::vector<double> scale, double value_scale, double offset) {
  Standardization st;
  st.mean = std::move(mean);
  st.scale = std::move(scale);
  st.value_scale = value_scale;
  st.value_offset = offset;
  return st;
}

// V and dV/dx in the user's units of an MLP trained under `st`, at x (B×n, user units).
std::pair<torch::Tensor, torch::Tensor> user_potential(Mlp& mlp, const Standardization& st, const torch::Tensor& x) {
  const auto xs = standardize_inputs(st, x).detach().requires_grad_(true);
  const auto v = mlp->forward(xs);
  const auto g = torch::autograd::grad({v}, {xs}, {torch::ones_like(v)})[0];
  return {user_values(st, v.detach()), user_gradients(st, g)};
}

// The round trip of the data: standardized inputs have mean 0 and scale 1 under their own statistics, and
// S̃ · (s / σ) gives S back.
TEST(Standardization, TransformsMatchTheirDefinitions) {
  const auto st = example({500, -3}, {250, 0.5}, 2e4, 7);
  const auto x = torch::tensor({{0.0, -3.5}, {1000.0, -2.0}}, torch::kFloat64);
  const auto xs = standardize_inputs(st, x);
  EXPECT_DOUBLE_EQ(xs[0][0].item<double>(), -2.0);
  EXPECT_DOUBLE_EQ(xs[1][1].item<double>(), 2.0);
  const auto S = torch::tensor({{1e4, -3e4}}, torch::kFloat64);
  const auto Ss = standardize_gradients(st, S);
  EXPECT_DOUBLE_EQ(Ss[0][0].item<double>(), 1e4 * 250 / 2e4);
  EXPECT_TRUE(torch::allclose(user_gradients(st, Ss), S, 1e-15, 0));
  const auto v = torch::tensor({7.0 + 2e4}, torch::kFloat64);
  EXPECT_DOUBLE_EQ(standardize_values(st, v).item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(user_values(st, standardize_values(st, v)).item<double>(), 7.0 + 2e4);
  const Standardization none;
  EXPECT_TRUE(standardize_inputs(none, x).is_same(x));  // the identity: the tensor itself
}

// Weights re-expressed from one standardization to another (or to none, and back) give the same V(x) and dV/dx
// in the user's units.
TEST(Standardization, ReparameterizeKeepsTheFunction) {
  config::ModelSpec spec;
  spec.widths = {8, 6};
  spec.activation = config::Activation::tanh;
  spec.dtype = config::DType::float64;
  auto mlp = make_mlp(spec, 2, /*seed=*/3);
  const auto a = example({500, -3}, {250, 0.5}, 2e4, 7), b = example({480, -2}, {260, 0.7}, 1.5e4, -3);
  const Standardization none;
  const auto x = torch::rand({50, 2}, torch::kFloat64) * torch::tensor({1000.0, 2.0}) + torch::tensor({0.0, -4.0});
  const auto [va, ga] = user_potential(mlp, a, x);
  NamedTensors weights;
  for (const auto& p : mlp->named_parameters()) weights.emplace_back(p.key(), p.value().detach().clone());
  for (const auto* to : {&b, &none}) {
    auto other = make_mlp(spec, 2, /*seed=*/0);
    {
      torch::NoGradGuard no_grad;
      auto named = other->named_parameters();
      for (const auto& [name, t] : reparameterize(weights, a, *to, 2)) named[name].copy_(t);
    }
    const auto [vb, gb] = user_potential(other, *to, x);
    EXPECT_LT(((vb - va).abs().max() / va.abs().max()).item<double>(), 1e-13);
    EXPECT_LT(((gb - ga).abs().max() / ga.abs().max()).item<double>(), 1e-13);
  }
  const auto same = reparameterize(weights, a, a, 2);  // a no-op
  for (size_t i = 0; i < same.size(); ++i) EXPECT_TRUE(torch::equal(same[i].second, weights[i].second));
}

// atom_centered's element energies: E_a = Σ_i b_{Z_i} over the atoms, taken off the values and added back; weights
// re-expressed from one set of element energies to another (or to none) give the same V(x) in the user's units,
// each element's network's output bias taking its own change.
TEST(Standardization, ElementEnergiesShiftEachNetwork) {
  const std::vector<int64_t> elements{1, 6, 8};  // H, C, O
  EXPECT_DOUBLE_EQ(atoms_energy_of({-0.5, -38, -75}, elements, small_molecule::kNumbers), -38 - 75 - 1.5);
  EXPECT_EQ(atoms_energy_of({}, elements, small_molecule::kNumbers), 0.0);
  Standardization a, b;
  a.element_energies = {-0.5, -38, -75}, b.element_energies = {-0.25, -40, -70};
  a.atoms_energy = atoms_energy_of(a.element_energies, elements, small_molecule::kNumbers);
  b.atoms_energy = atoms_energy_of(b.element_energies, elements, small_molecule::kNumbers);
  const auto v = torch::tensor({-114.0}, torch::kFloat64);
  EXPECT_DOUBLE_EQ(standardize_values(a, v).item<double>(), 0.5);
  EXPECT_DOUBLE_EQ(user_values(a, standardize_values(a, v)).item<double>(), -114.0);
  torch::manual_seed(4);
  const auto spec = small_molecule::small_descriptor_spec(small_molecule::kNumbers, config::Activation::tanh);
  auto mlp = make_mlp(spec, 15, /*seed=*/3);
  const auto x = small_molecule::molecule_frames(6);
  const auto va = user_values(a, mlp->forward(x).detach());
  NamedTensors weights;
  for (const auto& p : mlp->named_parameters()) weights.emplace_back(p.key(), p.value().detach().clone());
  const Standardization none;
  for (const Standardization* to : {static_cast<const Standardization*>(&b), &none}) {
    auto other = make_mlp(spec, 15, /*seed=*/0);
    {
      torch::NoGradGuard no_grad;
      auto named = other->named_parameters();
      for (const auto& [name, t] : reparameterize(weights, a, *to, 15)) named[name].copy_(t);
    }
    const auto vb = user_values(*to, other->forward(x).detach());
    EXPECT_LT(((vb - va).abs().max() / va.abs().max()).item<double>(), 1e-14);
  }
}

}  // namespace
}  // namespace gradfit::model
