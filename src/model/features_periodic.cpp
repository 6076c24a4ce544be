#include "model/features_periodic.h"

#include <cmath>

namespace gradfit::model {
namespace {

int64_t periodic_count(const std::vector<double>& periods) {
  int64_t count = 0;
  for (const double period : periods) count += period > 0 ? 1 : 0;
  return count;
}

TablesLike periodic_tables(const std::vector<double>& periods) {
  const auto n = static_cast<int64_t>(periods.size());
  std::vector<int64_t> columns;
  std::vector<double> angular;
  for (int64_t i = 0; i < n; ++i) {
    const double period = periods[static_cast<size_t>(i)];
    angular.push_back(period > 0 ? 2 * M_PI / period : 0.0);
    if (period > 0)
      columns.push_back(n + i), columns.push_back(2 * n + i);
    else
      columns.push_back(i);
  }
  return TablesLike({torch::tensor(columns, torch::kInt64), torch::tensor(angular, torch::kFloat64)});
}

}  // namespace

PeriodicFeatures::PeriodicFeatures(const std::vector<double>& periods)
    : FeatureMap(static_cast<int64_t>(periods.size()), static_cast<int64_t>(periods.size()) + periodic_count(periods)),
      tables_(periodic_tables(periods)) {}

torch::Tensor PeriodicFeatures::gathered(const torch::Tensor& x, const torch::Tensor& cos,
                                         const torch::Tensor& sin) const {
  return torch::cat({x, cos, sin}, -1).index_select(-1, columns(x));
}

torch::Tensor PeriodicFeatures::phi(const torch::Tensor& x) const {
  const auto theta = x * angular(x);
  return gathered(x, theta.cos(), theta.sin());
}

FeatureRows PeriodicFeatures::at(const torch::Tensor& x) const {
  const auto& a = angular(x);
  const auto theta = x * a;
  const auto cos = theta.cos(), sin = theta.sin();
  FeatureRows rows;
  rows.phi = gathered(x, cos, sin);
  rows.first = sin.neg().mul_(a);  // ∂cos θ/∂x
  rows.second = cos.mul(a);        // ∂sin θ/∂x
  return rows;
}

torch::Tensor PeriodicFeatures::transpose_times(const FeatureRows& rows, const torch::Tensor& g) const {
  const int64_t n = input_dim();
  auto sizes = g.sizes().vec();
  sizes.back() = 3 * n;
  auto spread = torch::zeros(sizes, g.options());  // [g of x, g of cos θ, g of sin θ], zeros elsewhere
  spread.index_copy_(spread.dim() - 1, columns(g), g);
  return spread.narrow(-1, 0, n) + rows.first * spread.narrow(-1, n, n) + rows.second * spread.narrow(-1, 2 * n, n);
}

torch::Tensor PeriodicFeatures::times(const FeatureRows& rows, const torch::Tensor& r) const {
  return torch::cat({r, rows.first * r, rows.second * r}, -1).index_select(-1, columns(r));
}

std::string PeriodicFeatures::script() const {
  return "def phi(self, x: Tensor) -> Tensor:\n"
         "    theta = x * self.angular\n"
         "    return torch.cat([x, theta.cos(), theta.sin()], -1).index_select(-1, self.columns)\n\n"
         "def phi_transpose(self, x: Tensor, g: Tensor) -> Tensor:\n"
         "    theta = x * self.angular\n"
         "    n = x.size(1)\n"
         "    spread = torch.zeros(x.size(0), 3 * n, dtype=g.dtype, device=g.device)\n"
         "    spread.index_copy_(1, self.columns, g)\n"
         "    return spread.narrow(1, 0, n) + theta.sin().neg() * self.angular * spread.narrow(1, n, n) + "
         "theta.cos() * self.angular * spread.narrow(1, 2 * n, n)\n\n";
}

NamedTensors PeriodicFeatures::script_buffers(torch::Dtype dtype) const {
  return {{"angular", tables_.cpu()[1].to(dtype)}, {"columns", tables_.cpu()[0]}};
}

}  // namespace gradfit::model
