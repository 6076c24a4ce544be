#include "model/features.h"

#include <cmath>

namespace gradfit::model {

int64_t feature_dim(const config::ModelSpec& spec, int64_t n) {
  switch (spec.features) {
    case config::Features::identity: return n;
    case config::Features::inverse_distances: return (n / 3) * (n / 3 - 1) / 2;
    case config::Features::periodic: {
      int64_t periodic = 0;
      for (const double period : spec.periods) periodic += period > 0 ? 1 : 0;
      return n + periodic;
    }
  }
  return n;
}

Features::Features(const config::ModelSpec& spec, int64_t n) : kind_(spec.features), n_(n), m_(feature_dim(spec, n)) {
  std::vector<int64_t> first, second, columns;
  std::vector<double> angular;
  if (kind_ == config::Features::inverse_distances)
    for (int64_t i = 0; i < n / 3; ++i)
      for (int64_t j = i + 1; j < n / 3; ++j) first.push_back(i), second.push_back(j);
  if (kind_ == config::Features::periodic) {
    for (int64_t i = 0; i < n; ++i) {
      const double period = spec.periods.at(static_cast<size_t>(i));
      angular.push_back(period > 0 ? 2 * M_PI / period : 0.0);
      if (period > 0)
        columns.push_back(n + i), columns.push_back(2 * n + i);
      else
        columns.push_back(i);
    }
  }
  tables_.pair_i = torch::tensor(first, torch::kInt64);
  tables_.pair_j = torch::tensor(second, torch::kInt64);
  tables_.columns = torch::tensor(columns, torch::kInt64);
  tables_.angular = torch::tensor(angular, torch::kFloat64);
}

void Features::set_scaling(const std::vector<double>& mean, const std::vector<double>& scale) {
  tables_.mean = mean.empty() ? torch::Tensor() : torch::tensor(mean, torch::kFloat64);
  tables_.scale = scale.empty() ? torch::Tensor() : torch::tensor(scale, torch::kFloat64);
  on_device_ = Tables{};
}

const Features::Tables& Features::tables_like(const torch::Tensor& like) const {
  const auto& cached = on_device_.angular;
  if (cached.defined() && cached.scalar_type() == like.scalar_type() && cached.device() == like.device())
    return on_device_;
  const auto device = like.device();
  const auto floating = like.options().requires_grad(false);
  const auto moved = [&](const torch::Tensor& t) { return t.defined() ? t.to(floating) : t; };
  on_device_ = {tables_.pair_i.to(device), tables_.pair_j.to(device), tables_.columns.to(device),
                moved(tables_.angular),    moved(tables_.mean),       moved(tables_.scale)};
  return on_device_;
}

torch::Tensor Features::scaled(const Tables& t, const torch::Tensor& phi) {
  return t.mean.defined() ? (phi - t.mean) / t.scale : phi;
}

torch::Tensor Features::periodic_columns(const Tables& t, const torch::Tensor& x, const torch::Tensor& cos,
                                         const torch::Tensor& sin) const {
  return torch::cat({x, cos, sin}, -1).index_select(-1, t.columns);
}

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
}  // namespace

torch::Tensor Features::operator()(const torch::Tensor& x) const {
  if (kind_ == config::Features::identity) return x;
  const Tables& t = tables_like(x);
  if (kind_ == config::Features::inverse_distances)
    return scaled(t, inverse_norms(pair_differences(x, t.pair_i, t.pair_j)));
  const auto theta = x * t.angular;
  return scaled(t, periodic_columns(t, x, theta.cos(), theta.sin()));
}

Features::AtRows Features::at(const torch::Tensor& x) const {
  torch::NoGradGuard no_grad;
  AtRows rows;
  if (kind_ == config::Features::identity) {
    rows.phi = x;
    return rows;
  }
  const Tables& t = tables_like(x);
  if (kind_ == config::Features::inverse_distances) {
    rows.first = pair_differences(x, t.pair_i, t.pair_j);
    rows.phi = inverse_norms(rows.first);
    rows.second = rows.phi * rows.phi * rows.phi;
  } else {
    const auto theta = x * t.angular;
    const auto cos = theta.cos(), sin = theta.sin();
    rows.phi = periodic_columns(t, x, cos, sin);
    rows.first = sin.neg().mul_(t.angular);  // ∂cos θ/∂x
    rows.second = cos.mul(t.angular);        // ∂sin θ/∂x
  }
  rows.phi = scaled(t, rows.phi);  // J's factors stay those of φ: J̃ divides by σ in times and transpose_times
  return rows;
}

torch::Tensor Features::transpose_times(const AtRows& rows, const torch::Tensor& g_scaled) const {
  if (kind_ == config::Features::identity) return g_scaled;
  const Tables& t = tables_like(g_scaled);
  const auto g = t.scale.defined() ? g_scaled / t.scale : g_scaled;  // diag(1/σ) g
  if (kind_ == config::Features::inverse_distances) {
    // g_p φ_p³ (r_i − r_j) goes to atom j, and its negative to atom i.
    const auto u = (g * rows.second).unsqueeze(-1) * rows.first;
    auto sizes = u.sizes().vec();
    sizes[sizes.size() - 2] = n_ / 3;
    auto out = torch::zeros(sizes, u.options());
    const int64_t atom_dim = out.dim() - 2;
    out.index_add_(atom_dim, t.pair_j, u);
    out.index_add_(atom_dim, t.pair_i, u.neg());
    return out.flatten(-2);
  }
  auto sizes = g.sizes().vec();
  sizes.back() = 3 * n_;
  auto spread = torch::zeros(sizes, g.options());  // [g of x, g of cos θ, g of sin θ], zeros elsewhere
  spread.index_copy_(spread.dim() - 1, t.columns, g);
  return spread.narrow(-1, 0, n_) + rows.first * spread.narrow(-1, n_, n_) +
         rows.second * spread.narrow(-1, 2 * n_, n_);
}

torch::Tensor Features::times(const AtRows& rows, const torch::Tensor& r) const {
  if (kind_ == config::Features::identity) return r;
  const Tables& t = tables_like(r);
  torch::Tensor jr;
  if (kind_ == config::Features::inverse_distances) {
    // ∂φ_p = −φ_p³ (r_i − r_j) · (∂r_i − ∂r_j), for each model's r alike.
    auto moves = pair_differences(r.reshape({-1, n_}), t.pair_i, t.pair_j);  // (R·B) × pairs × 3
    if (r.dim() == 3) moves = moves.view({r.size(0), r.size(1), -1, 3});
    jr = (moves * rows.first).sum(-1).mul_(rows.second).neg_();
  } else {
    jr = periodic_columns(t, r, rows.first * r, rows.second * r);
  }
  return t.scale.defined() ? jr.div_(t.scale) : jr;
}

Features::Coincidence Features::first_coincidence(const torch::Tensor& x) const {
  Coincidence found;
  if (kind_ != config::Features::inverse_distances || x.size(0) == 0) return found;
  torch::NoGradGuard no_grad;
  const Tables& t = tables_like(x);
  const auto zero = pair_differences(x, t.pair_i, t.pair_j).square().sum(-1).eq(0);  // B × pairs
  const auto hits = zero.nonzero();
  if (hits.size(0) == 0) return found;
  const auto first = hits[0].cpu();
  const int64_t pair = first[1].item<int64_t>();
  found.row = first[0].item<int64_t>();
  found.atom_i = tables_.pair_i[pair].item<int64_t>();
  found.atom_j = tables_.pair_j[pair].item<int64_t>();
  return found;
}

}  // namespace gradfit::model
