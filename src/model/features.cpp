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
  if (kind_ == config::Features::inverse_distances) {
    std::vector<int64_t> first, second;
    for (int64_t i = 0; i < n / 3; ++i)
      for (int64_t j = i + 1; j < n / 3; ++j) first.push_back(i), second.push_back(j);
    pair_i_ = torch::tensor(first, torch::kInt64);
    pair_j_ = torch::tensor(second, torch::kInt64);
  }
  if (kind_ == config::Features::periodic) {
    std::vector<int64_t> columns;
    for (int64_t i = 0; i < n; ++i) {
      const double period = spec.periods.at(static_cast<size_t>(i));
      angular_.push_back(period > 0 ? 2 * M_PI / period : 0.0);
      if (period > 0)
        columns.push_back(n + i), columns.push_back(2 * n + i);
      else
        columns.push_back(i);
    }
    columns_ = torch::tensor(columns, torch::kInt64);
  }
}

void Features::set_scaling(const std::vector<double>& mean, const std::vector<double>& scale) {
  mean_ = mean, scale_ = scale;
}

torch::Tensor Features::scaled(const torch::Tensor& phi) const {
  if (mean_.empty()) return phi;
  return (phi - torch::tensor(mean_, phi.options())) / torch::tensor(scale_, phi.options());
}

torch::Tensor Features::periodic_columns(const torch::Tensor& x, const torch::Tensor& cos,
                                         const torch::Tensor& sin) const {
  return torch::cat({x, cos, sin}, -1).index_select(-1, columns_.to(x.device()));
}

namespace {
// r_i − r_j for every pair, from points x (B×3a): B × pairs × 3.
torch::Tensor pair_differences(const torch::Tensor& x, const torch::Tensor& pair_i, const torch::Tensor& pair_j) {
  const auto atoms = x.reshape({x.size(0), -1, 3});
  return atoms.index_select(1, pair_i.to(x.device())) - atoms.index_select(1, pair_j.to(x.device()));
}
// 1 / ‖d‖ over the last dimension.
torch::Tensor inverse_norms(const torch::Tensor& differences) {
  return differences.square().sum(-1).sqrt().reciprocal();
}
}  // namespace

torch::Tensor Features::operator()(const torch::Tensor& x) const {
  switch (kind_) {
    case config::Features::identity: return x;
    case config::Features::inverse_distances: return scaled(inverse_norms(pair_differences(x, pair_i_, pair_j_)));
    case config::Features::periodic: {
      const auto theta = x * torch::tensor(angular_, x.options());
      return scaled(periodic_columns(x, theta.cos(), theta.sin()));
    }
  }
  return x;
}

Features::AtRows Features::at(const torch::Tensor& x) const {
  torch::NoGradGuard no_grad;
  AtRows rows;
  if (kind_ == config::Features::identity) {
    rows.phi = x;
  } else if (kind_ == config::Features::inverse_distances) {
    rows.first = pair_differences(x, pair_i_, pair_j_);
    rows.phi = inverse_norms(rows.first);
    rows.second = rows.phi * rows.phi * rows.phi;
  } else {
    const auto angular = torch::tensor(angular_, x.options());
    const auto theta = x * angular;
    const auto cos = theta.cos(), sin = theta.sin();
    rows.phi = periodic_columns(x, cos, sin);
    rows.first = sin.neg().mul_(angular);  // ∂cos θ/∂x
    rows.second = cos.mul(angular);        // ∂sin θ/∂x
  }
  rows.phi = scaled(rows.phi);  // J's factors stay those of φ: J̃ divides by σ in times and transpose_times
  return rows;
}

torch::Tensor Features::transpose_times(const AtRows& rows, const torch::Tensor& g_scaled) const {
  if (kind_ == config::Features::identity) return g_scaled;
  const auto g = mean_.empty() ? g_scaled : g_scaled / torch::tensor(scale_, g_scaled.options());  // diag(1/σ) g
  if (kind_ == config::Features::inverse_distances) {
    // g_p φ_p³ (r_i − r_j) goes to atom j, and its negative to atom i.
    const auto u = (g * rows.second).unsqueeze(-1) * rows.first;
    auto sizes = u.sizes().vec();
    sizes[sizes.size() - 2] = n_ / 3;
    auto out = torch::zeros(sizes, u.options());
    const int64_t atom_dim = out.dim() - 2;
    out.index_add_(atom_dim, pair_j_.to(u.device()), u);
    out.index_add_(atom_dim, pair_i_.to(u.device()), u.neg());
    return out.flatten(-2);
  }
  auto sizes = g.sizes().vec();
  sizes.back() = 3 * n_;
  auto spread = torch::zeros(sizes, g.options());  // [g of x, g of cos θ, g of sin θ], zeros elsewhere
  spread.index_copy_(spread.dim() - 1, columns_.to(g.device()), g);
  return spread.narrow(-1, 0, n_) + rows.first * spread.narrow(-1, n_, n_) +
         rows.second * spread.narrow(-1, 2 * n_, n_);
}

torch::Tensor Features::times(const AtRows& rows, const torch::Tensor& r) const {
  if (kind_ == config::Features::identity) return r;
  torch::Tensor jr;
  if (kind_ == config::Features::inverse_distances) {
    // ∂φ_p = −φ_p³ (r_i − r_j) · (∂r_i − ∂r_j), for each model's r alike.
    auto moves = pair_differences(r.reshape({-1, n_}), pair_i_, pair_j_);  // (R·B) × pairs × 3
    if (r.dim() == 3) moves = moves.view({r.size(0), r.size(1), -1, 3});
    jr = (moves * rows.first).sum(-1).mul_(rows.second).neg_();
  } else {
    jr = periodic_columns(r, rows.first * r, rows.second * r);
  }
  return mean_.empty() ? jr : jr.div_(torch::tensor(scale_, jr.options()));
}

Features::IndexTables Features::index_tables() const {
  return {pair_i_, pair_j_, columns_, torch::tensor(angular_, torch::kFloat64)};
}

Features::Scaling Features::scaling() const {
  return {mean_, scale_};
}

Features::Coincidence Features::first_coincidence(const torch::Tensor& x) const {
  Coincidence found;
  if (kind_ != config::Features::inverse_distances || x.size(0) == 0) return found;
  torch::NoGradGuard no_grad;
  const auto zero = pair_differences(x, pair_i_, pair_j_).square().sum(-1).eq(0);  // B × pairs
  const auto hits = zero.nonzero();
  if (hits.size(0) == 0) return found;
  const auto first = hits[0].cpu();
  const int64_t pair = first[1].item<int64_t>();
  found.row = first[0].item<int64_t>();
  found.atom_i = pair_i_[pair].item<int64_t>();
  found.atom_j = pair_j_[pair].item<int64_t>();
  return found;
}

}  // namespace gradfit::model
