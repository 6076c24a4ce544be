#include "model/features_inverse_distances.h"

namespace gradfit::model {
namespace {

// r_i − r_j for every pair, from points x (B×3a): B × pairs × 3.
torch::Tensor pair_differences(const torch::Tensor& x, const torch::Tensor& pair_i, const torch::Tensor& pair_j) {
  const auto atoms = x.reshape({x.size(0), -1, 3});
  return atoms.index_select(1, pair_i) - atoms.index_select(1, pair_j);
}

// 1 / ‖d‖ over the last dimension.
torch::Tensor inverse_norms(const torch::Tensor& differences) {
  return differences.square().sum(-1).sqrt().reciprocal();
}

TablesLike pair_tables(int64_t atoms) {
  std::vector<int64_t> first, second;
  for (int64_t i = 0; i < atoms; ++i)
    for (int64_t j = i + 1; j < atoms; ++j) first.push_back(i), second.push_back(j);
  return TablesLike({torch::tensor(first, torch::kInt64), torch::tensor(second, torch::kInt64)});
}

}  // namespace

InverseDistanceFeatures::InverseDistanceFeatures(int64_t n)
    : FeatureMap(n, (n / 3) * (n / 3 - 1) / 2), pairs_(pair_tables(n / 3)) {}

torch::Tensor InverseDistanceFeatures::phi(const torch::Tensor& x) const {
  return inverse_norms(pair_differences(x, pair_i(x), pair_j(x)));
}

FeatureRows InverseDistanceFeatures::at(const torch::Tensor& x) const {
  FeatureRows rows;
  rows.first = pair_differences(x, pair_i(x), pair_j(x));
  rows.phi = inverse_norms(rows.first);
  rows.second = rows.phi * rows.phi * rows.phi;
  return rows;
}

torch::Tensor InverseDistanceFeatures::transpose_times(const FeatureRows& rows, const torch::Tensor& g) const {
  // g_p φ_p³ (r_i − r_j) goes to atom j, and its negative to atom i.
  const auto u = (g * rows.second).unsqueeze(-1) * rows.first;
  auto sizes = u.sizes().vec();
  sizes[sizes.size() - 2] = input_dim() / 3;
  auto out = torch::zeros(sizes, u.options());
  const int64_t atom_dim = out.dim() - 2;
  out.index_add_(atom_dim, pair_j(g), u);
  out.index_add_(atom_dim, pair_i(g), u.neg());
  return out.flatten(-2);
}

torch::Tensor InverseDistanceFeatures::times(const FeatureRows& rows, const torch::Tensor& r) const {
  // ∂φ_p = −φ_p³ (r_i − r_j) · (∂r_i − ∂r_j), for each model's r alike.
  auto moves = pair_differences(r.reshape({-1, input_dim()}), pair_i(r), pair_j(r));  // (R·B) × pairs × 3
  if (r.dim() == 3) moves = moves.view({r.size(0), r.size(1), -1, 3});
  return (moves * rows.first).sum(-1).mul_(rows.second).neg_();
}

RowProblem InverseDistanceFeatures::first_problem(const torch::Tensor& x) const {
  if (x.size(0) == 0) return {};
  torch::NoGradGuard no_grad;
  const auto zero = pair_differences(x, pair_i(x), pair_j(x)).square().sum(-1).eq(0);  // B × pairs
  const auto hits = zero.nonzero();
  if (hits.size(0) == 0) return {};
  const auto first = hits[0].cpu();
  const int64_t pair = first[1].item<int64_t>();
  const auto& tables = pairs_.cpu();
  return {first[0].item<int64_t>(), "atoms " + std::to_string(tables[0][pair].item<int64_t>()) + " and " +
                                        std::to_string(tables[1][pair].item<int64_t>()) +
                                        " are at the same place (model.features inverse_distances needs distinct "
                                        "atoms)"};
}

std::string InverseDistanceFeatures::script() const {
  return "def pair_differences(self, x: Tensor) -> Tensor:\n"
         "    atoms = x.reshape(x.size(0), -1, 3)\n"
         "    return atoms.index_select(1, self.pair_i) - atoms.index_select(1, self.pair_j)\n\n"
         "def phi(self, x: Tensor) -> Tensor:\n"
         "    return self.pair_differences(x).square().sum(-1).sqrt().reciprocal()\n\n"
         "def phi_transpose(self, x: Tensor, g: Tensor) -> Tensor:\n"
         "    d = self.pair_differences(x)\n"
         "    phi = d.square().sum(-1).sqrt().reciprocal()\n"
         "    u = (g * (phi * phi * phi)).unsqueeze(-1) * d\n"
         "    out = torch.zeros(x.size(0), x.size(1) // 3, 3, dtype=u.dtype, device=u.device)\n"
         "    out.index_add_(1, self.pair_j, u)\n"
         "    out.index_add_(1, self.pair_i, u.neg())\n"
         "    return out.flatten(-2)\n\n";
}

NamedTensors InverseDistanceFeatures::script_buffers(torch::Dtype) const {
  return {{"pair_i", pairs_.cpu()[0]}, {"pair_j", pairs_.cpu()[1]}};
}

}  // namespace gradfit::model
