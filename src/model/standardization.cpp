#include "model/standardization.h"

#include <algorithm>

namespace gradfit::model {
namespace {

torch::Tensor column(const std::vector<double>& values) {
  return torch::tensor(values, torch::kFloat64);
}

// μ, σ, s, v0 of `st`, or those of the identity for `dim` components.
struct Affine {
  torch::Tensor mean, scale;
  double value_scale, value_offset;
};
// With feature statistics, the MLP's inputs are the scaled features: their μ_φ and σ_φ.
Affine affine_of(const Standardization& st, int64_t dim) {
  if (!st.active()) return {torch::zeros({dim}, torch::kFloat64), torch::ones({dim}, torch::kFloat64), 1.0, 0.0};
  if (!st.feature_mean.empty())
    return {column(st.feature_mean), column(st.feature_scale), st.value_scale, st.value_offset};
  return {column(st.mean), column(st.scale), st.value_scale, st.value_offset};
}

// b_L' = b_L + b_Z(from) − b_Z(to) for each element's network (b_Z = 0 where one side has no element energies).
NamedTensors shift_element_energies(const NamedTensors& weights, const Standardization& from,
                                    const Standardization& to) {
  TORCH_CHECK(!from.active() && !to.active(), "element energies under data.standardize");
  const size_t networks = std::max(from.element_energies.size(), to.element_energies.size());
  TORCH_CHECK(weights.size() % networks == 0, "weights of ", networks, " networks expected");
  const size_t per_network = weights.size() / networks;
  const auto energy = [](const Standardization& st, size_t e) {
    return st.element_energies.empty() ? 0.0 : st.element_energies.at(e);
  };
  NamedTensors out = weights;
  for (size_t e = 0; e < networks; ++e) {
    auto& bias = out[(e + 1) * per_network - 1].second;
    bias = (bias.to(torch::kFloat64) + (energy(from, e) - energy(to, e))).to(bias.scalar_type());
  }
  return out;
}

}  // namespace

Features features_for(const config::ModelSpec& spec, int64_t n, const Standardization& st) {
  Features features(spec, n);
  features.set_scaling(st.feature_mean, st.feature_scale);
  return features;
}

torch::Tensor standardize_inputs(const Standardization& st, const torch::Tensor& x) {
  if (!st.active()) return x;
  const auto options = torch::TensorOptions().dtype(torch::kFloat64).device(x.device());
  const auto mean = column(st.mean).to(options), scale = column(st.scale).to(options);
  return ((x.to(torch::kFloat64) - mean) / scale).to(x.scalar_type());
}

torch::Tensor standardize_gradients(const Standardization& st, const torch::Tensor& grad_samples) {
  if (!st.active()) return grad_samples;
  const auto factor = column(target_factors(st)).to(grad_samples.device());
  return (grad_samples.to(torch::kFloat64) * factor).to(grad_samples.scalar_type());
}

double atoms_energy_of(const std::vector<double>& element_energies, const std::vector<int64_t>& elements,
                       const std::vector<int64_t>& numbers) {
  if (element_energies.empty()) return 0.0;
  double sum = 0;
  for (const int64_t z : numbers) {
    const auto at = std::find(elements.begin(), elements.end(), z);
    TORCH_CHECK(at != elements.end(), "atomic number ", z, " is not one of the model's elements");
    sum += element_energies[static_cast<size_t>(at - elements.begin())];
  }
  return sum;
}

// Inactive and without element energies, these two are the identity. Inactive, s = 1 and v0 = 0, so that the
// element energies alone are exactly one subtraction or addition of E_a in float64.
torch::Tensor standardize_values(const Standardization& st, const torch::Tensor& values) {
  if (!st.active() && st.element_energies.empty()) return values;
  return ((values.to(torch::kFloat64) - st.atoms_energy - st.value_offset) / st.value_scale).to(values.scalar_type());
}

torch::Tensor user_values(const Standardization& st, const torch::Tensor& model_values) {
  if (!st.active() && st.element_energies.empty()) return model_values;
  return (model_values.to(torch::kFloat64) * st.value_scale + st.value_offset + st.atoms_energy)
      .to(model_values.scalar_type());
}

torch::Tensor user_gradients(const Standardization& st, const torch::Tensor& model_gradients) {
  if (!st.active()) return model_gradients;
  const auto factor = column(gradient_factors(st)).to(model_gradients.device());
  return (model_gradients.to(torch::kFloat64) * factor).to(model_gradients.scalar_type());
}

std::vector<double> target_factors(const Standardization& st) {
  std::vector<double> factors;
  for (const double sigma : st.scale) factors.push_back(sigma / st.value_scale);
  return factors;
}

std::vector<double> gradient_factors(const Standardization& st) {
  std::vector<double> factors;
  for (const double sigma : st.scale) factors.push_back(st.value_scale / sigma);
  return factors;
}

std::vector<double> squared_gradient_factors(const Standardization& st, int64_t dim) {
  std::vector<double> factors(static_cast<size_t>(dim), 1.0);
  if (!st.active()) return factors;
  factors = gradient_factors(st);
  for (double& f : factors) f *= f;
  return factors;
}

// With x̃_from = x̃_to · (σ_to / σ_from) + (μ_to − μ_from) / σ_from and Ṽ_to = (s_from Ṽ_from + v0_from − v0_to) / s_to:
//   W_0' = W_0 diag(σ_to / σ_from),  b_0' = b_0 + W_0 (μ_to − μ_from) / σ_from,
//   W_L' = W_L · s_from / s_to,      b_L' = b_L · s_from / s_to + (v0_from − v0_to) / s_to.
NamedTensors reparameterize(const NamedTensors& weights, const Standardization& from, const Standardization& to,
                            int64_t input_dim) {
  if (from == to) return weights;
  if (!from.element_energies.empty() || !to.element_energies.empty()) return shift_element_energies(weights, from, to);
  const Affine a = affine_of(from, input_dim), b = affine_of(to, input_dim);
  NamedTensors out = weights;
  const size_t last = out.size() - 2;  // the output layer's weight; its bias follows
  const auto dtype = out[0].second.scalar_type();
  const auto w0 = out[0].second.to(torch::kFloat64), b0 = out[1].second.to(torch::kFloat64);
  out[0].second = (w0 * (b.scale / a.scale)).to(dtype);
  out[1].second = (b0 + torch::mv(w0, (b.mean - a.mean) / a.scale)).to(dtype);
  const double ratio = a.value_scale / b.value_scale;
  out[last].second = (out[last].second.to(torch::kFloat64) * ratio).to(dtype);
  out[last + 1].second =
      (out[last + 1].second.to(torch::kFloat64) * ratio + (a.value_offset - b.value_offset) / b.value_scale).to(dtype);
  return out;
}

}  // namespace gradfit::model
