#include "data/targets.h"

#include <cmath>

#include "common/error.h"

namespace gradfit::data {
namespace {

using config::DataSpec;
using config::Sampling;
using config::Target;

// A counter-based generator: the k-th number of stream `stream` under `seed` is a pure function of the three, so
// any rank can produce any row without generating the rows before it (SplitMix64 finaliser).
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in (0, 1).
double uniform01(uint64_t seed, uint64_t stream, uint64_t k) {
  const uint64_t bits = mix(mix(mix(seed) ^ stream) ^ k);
  return (static_cast<double>(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

constexpr uint64_t kPointStream = 1;
constexpr uint64_t kWellStream = 2;
constexpr double kPi = 3.14159265358979323846;

// Gaussian well k: centre uniform in [low, high]^n, depth 1 + k / wells so that wells differ.
torch::Tensor well_centres(const DataSpec& spec) {
  auto centres = torch::empty({spec.wells, spec.dim}, torch::kFloat64);
  auto c = centres.accessor<double, 2>();
  for (int64_t k = 0; k < spec.wells; ++k)
    for (int64_t j = 0; j < spec.dim; ++j)
      c[k][j] = spec.low + (spec.high - spec.low) * uniform01(spec.seed, kWellStream, k * spec.dim + j);
  return centres;
}

}  // namespace

torch::Tensor sample_points(const DataSpec& spec, int64_t begin, int64_t count) {
  const int64_t n = spec.dim;
  auto x = torch::empty({count, n}, torch::kFloat64);
  auto a = x.accessor<double, 2>();
  for (int64_t r = 0; r < count; ++r) {
    const auto row = static_cast<uint64_t>(begin + r);
    switch (spec.sampling) {
      case Sampling::grid: {
        // Row-major index: the last coordinate varies fastest.
        const int64_t m = spec.points_per_axis;
        const double step = m > 1 ? (spec.high - spec.low) / static_cast<double>(m - 1) : 0.0;
        int64_t rest = begin + r;
        for (int64_t j = n - 1; j >= 0; --j) {
          a[r][j] = m > 1 ? spec.low + step * static_cast<double>(rest % m) : 0.5 * (spec.low + spec.high);
          rest /= m;
        }
        break;
      }
      case Sampling::uniform:
        for (int64_t j = 0; j < n; ++j)
          a[r][j] = spec.low + (spec.high - spec.low) * uniform01(spec.seed, kPointStream, row * n + j);
        break;
      case Sampling::normal:
        for (int64_t j = 0; j < n; ++j) {  // Box-Muller, two uniforms per coordinate.
          const double u1 = uniform01(spec.seed, kPointStream, 2 * (row * n + j));
          const double u2 = uniform01(spec.seed, kPointStream, 2 * (row * n + j) + 1);
          a[r][j] = spec.stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
        }
        break;
    }
  }
  return x;
}

torch::Tensor potential(const DataSpec& spec, const torch::Tensor& x) {
  switch (spec.target) {
    case Target::quadratic: {
      const auto P = torch::tensor(spec.P, torch::kFloat64).view({spec.dim, spec.dim});
      return (x.matmul(P) * x).sum(1);  // xᵀPx per row
    }
    case Target::rosenbrock: {
      const auto head = x.narrow(1, 0, spec.dim - 1);
      const auto tail = x.narrow(1, 1, spec.dim - 1);
      return (100.0 * (tail - head.pow(2)).pow(2) + (1.0 - head).pow(2)).sum(1);
    }
    case Target::gaussian_wells: {
      const auto centres = well_centres(spec);                                           // K×n
      const auto depth = 1.0 + torch::arange(spec.wells, torch::kFloat64) / spec.wells;  // K
      const auto sq_dist = (x.unsqueeze(1) - centres.unsqueeze(0)).pow(2).sum(2);        // B×K
      return -(depth * torch::exp(-sq_dist / (2.0 * spec.well_width * spec.well_width))).sum(1);
    }
    case Target::file: break;
  }
  throw DataError("data.target 'file' has no analytic potential");
}

}  // namespace gradfit::data
