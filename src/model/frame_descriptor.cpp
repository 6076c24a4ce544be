#include "model/frame_descriptor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

namespace gradfit::model::descriptor {
namespace {

using Vec = std::array<double, 3>;

constexpr double kPi = 3.14159265358979323846;

std::vector<double> grid(double start, double stop, int64_t divisions) {
  std::vector<double> shifts;
  for (int64_t k = 0; k < divisions; ++k)
    shifts.push_back(start + static_cast<double>(k) * (stop - start) / static_cast<double>(divisions));
  return shifts;
}

// Per atom its element's index among `elements`.
std::vector<int64_t> species_of(const std::vector<int64_t>& elements, const std::vector<int64_t>& numbers) {
  std::vector<int64_t> species;
  for (size_t a = 0; a < numbers.size(); ++a) {
    const auto at = std::lower_bound(elements.begin(), elements.end(), numbers[a]);
    if (at == elements.end() || *at != numbers[a])
      throw std::invalid_argument("atom " + std::to_string(a) + " has atomic number " + std::to_string(numbers[a]) +
                                  ", not one of the model's elements");
    species.push_back(at - elements.begin());
  }
  return species;
}

// The pair (s, t), s ≤ t, of S species in row-major order: S(S+1)/2 of them.
int64_t pair_of(int64_t s, int64_t t, int64_t species) {
  const int64_t lo = std::min(s, t), hi = std::max(s, t);
  return lo * species - lo * (lo - 1) / 2 + (hi - lo);
}

double dot(const Vec& a, const Vec& b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

// ∂c/∂v_p for c = v_p · v_q / (d_p d_q): v_q / (d_p d_q) − c v_p / d_p².
Vec cosine_slope(const Neighbour& p, const Neighbour& q, double cosine) {
  Vec out{};
  for (size_t c = 0; c < 3; ++c) out[c] = q.v[c] / (p.d * q.d) - cosine * p.v[c] / (p.d * p.d);
  return out;
}

// Two neighbours p, q of an atom, and the slopes of the cosine of the angle between them by v_p and v_q.
struct Triplet {
  const Neighbour &p, &q;
  Vec cosine_by_p, cosine_by_q;
};

// A triplet's term (a, z) and its slopes by the two distances and by the cosine of the angle between them.
struct AngularTerm {
  double value, by_dp, by_dq, by_cosine;
};

// "atoms 2 and 5 (an image of 5 across the cell) are 0.02 Å apart, closer than 0.1 Å".
std::string overlap_text(const neighbours::Pairs& pairs, size_t p, double d) {
  const bool image = pairs.shift[p] != std::array<int64_t, 3>{0, 0, 0};
  char apart[64];
  std::snprintf(apart, sizeof apart, " are %.3g Å apart, closer than %g Å", d, kMinDistance);
  return "atoms " + std::to_string(pairs.i[p]) + " and " + std::to_string(pairs.j[p]) +
         (image ? " (an image of " + std::to_string(pairs.j[p]) + " across the cell)" : std::string()) + apart;
}

}  // namespace

FrameDescriptor::Terms FrameDescriptor::terms_of(const config::AtomCenteredSpec& spec, int64_t species) {
  FrameDescriptor::Terms t;
  t.radial_shifts = grid(spec.radial_start, spec.radial_cutoff, spec.radial_divisions);
  t.angular_shifts = grid(spec.angular_start, spec.angular_cutoff, spec.angular_divisions);
  for (int64_t z = 0; z < spec.angle_sections; ++z)
    t.angle_shifts.push_back((static_cast<double>(z) + 0.5) * kPi / static_cast<double>(spec.angle_sections));
  t.species = species;
  t.radial_width = species * spec.radial_divisions;
  t.angular_block = spec.angular_divisions * spec.angle_sections;
  t.width = t.radial_width + species * (species + 1) / 2 * t.angular_block;
  return t;
}

FrameDescriptor::FrameDescriptor(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& elements,
                                 const std::vector<int64_t>& numbers, const double* positions,
                                 const neighbours::Cell& cell)
    : spec_(spec),
      terms_(terms_of(spec, static_cast<int64_t>(elements.size()))),
      atoms_(static_cast<int64_t>(numbers.size())) {
  const std::vector<int64_t> species = species_of(elements, numbers);
  const auto pairs = neighbours::within(positions, atoms_, cell, std::max(spec.radial_cutoff, spec.angular_cutoff));
  first_.assign(static_cast<size_t>(atoms_ + 1), 0);
  for (size_t p = 0; p < pairs.size(); ++p) {
    Neighbour n{pairs.j[p], species[static_cast<size_t>(pairs.j[p])], {}, 0};
    for (size_t c = 0; c < 3; ++c) {
      n.v[c] =
          positions[3 * pairs.j[p] + static_cast<int64_t>(c)] - positions[3 * pairs.i[p] + static_cast<int64_t>(c)];
      for (size_t k = 0; k < 3; ++k) n.v[c] += static_cast<double>(pairs.shift[p][k]) * cell.vectors[k][c];
    }
    n.d = std::sqrt(dot(n.v, n.v));
    if (n.d < kMinDistance) throw std::invalid_argument(overlap_text(pairs, p, n.d));
    near_.push_back(n);
    ++first_[static_cast<size_t>(pairs.i[p]) + 1];
  }
  for (size_t i = 1; i < first_.size(); ++i) first_[i] += first_[i - 1];
}

// u^ζ and ζ u^(ζ−1): by repeated products where ζ is a whole number (ANI's 32: five squarings), else by std::pow.
struct PowerOf {
  double zeta;
  int64_t whole;  // ζ where it is a whole number, else −1
  explicit PowerOf(double z)
      : zeta(z), whole(z == std::floor(z) && z >= 1 && z <= 1024 ? static_cast<int64_t>(z) : -1) {}
  // {u^ζ, ζ u^(ζ−1)}
  std::pair<double, double> operator()(double u) const {
    if (whole < 0) {
      const double below = std::pow(u, zeta - 1);
      return {below * u, zeta * below};
    }
    double below = 1, factor = u;  // u^(ζ−1) by squaring
    for (int64_t e = whole - 1; e > 0; e >>= 1, factor *= factor)
      if (e & 1) below *= factor;
    return {below * u, zeta * below};
  }
};

// Every neighbour n of atom i within the radial cutoff: pair(i, n, first slot, the radial_divisions values and
// slopes by the distance); every two neighbours p, q of atom i within the angular cutoff: triplet(i, Triplet,
// first slot, the angular_block terms of the pair of elements' block). cos(θ − θ_z) and sin(θ − θ_z) come from
// cos θ = 0.95 c and sin θ = √(1 − 0.9025 c²) (θ = acos(0.95 c)) and the sections' cos θ_z, sin θ_z.
template <class OnPair, class OnTriplet>
void FrameDescriptor::visit(OnPair pair, OnTriplet triplet) const {
  const double rc = spec_.radial_cutoff, ra = spec_.angular_cutoff, k = kPi / rc, ka = kPi / ra;
  const PowerOf power(spec_.zeta);
  const size_t sections = terms_.angle_shifts.size(), radial = terms_.radial_shifts.size();
  std::vector<double> cos_z, sin_z;
  for (const double theta : terms_.angle_shifts) cos_z.push_back(std::cos(theta)), sin_z.push_back(std::sin(theta));
  std::vector<double> values(radial), slopes(radial);
  std::vector<AngularTerm> terms(static_cast<size_t>(terms_.angular_block));
  std::vector<const Neighbour*> close;  // atom i's neighbours within the angular cutoff
  for (int64_t i = 0; i < atoms_; ++i) {
    close.clear();
    for (auto n = near_.begin() + first_[static_cast<size_t>(i)];
         n != near_.begin() + first_[static_cast<size_t>(i) + 1]; ++n) {
      if (n->d < ra) close.push_back(&*n);
      if (n->d >= rc) continue;
      const double fc = 0.5 * std::cos(k * n->d) + 0.5, fc_slope = -0.5 * k * std::sin(k * n->d);
      for (size_t r = 0; r < radial; ++r) {
        const double e = n->d - terms_.radial_shifts[r], g = 0.25 * std::exp(-spec_.radial_eta * e * e);
        values[r] = g * fc;
        slopes[r] = g * (fc_slope - 2 * spec_.radial_eta * e * fc);
      }
      pair(i, *n, n->species * spec_.radial_divisions, values.data(), slopes.data());
    }
    for (size_t a = 0; a < close.size(); ++a)
      for (size_t b = a + 1; b < close.size(); ++b) {
        const Neighbour &p = *close[a], &q = *close[b];
        const double cosine = dot(p.v, q.v) / std::max(p.d * q.d, 1e-10);
        const double cos_angle = 0.95 * cosine, sin_angle = std::sqrt(1 - cos_angle * cos_angle);
        const Triplet pq{p, q, cosine_slope(p, q, cosine), cosine_slope(q, p, cosine)};
        const double angle_slope = -0.95 / sin_angle;
        const double fp = 0.5 * std::cos(ka * p.d) + 0.5, fq = 0.5 * std::cos(ka * q.d) + 0.5;
        const double fp_slope = -0.5 * ka * std::sin(ka * p.d), fq_slope = -0.5 * ka * std::sin(ka * q.d);
        for (size_t s = 0; s < terms_.angular_shifts.size(); ++s) {
          const double e = (p.d + q.d) / 2 - terms_.angular_shifts[s], radius = std::exp(-spec_.angular_eta * e * e);
          const double radius_slope = -spec_.angular_eta * e * radius;  // by either distance: ∂m/∂d = 1/2
          for (size_t z = 0; z < sections; ++z) {
            const double cos_shifted = cos_angle * cos_z[z] + sin_angle * sin_z[z];  // cos(θ − θ_z)
            const double sin_shifted = sin_angle * cos_z[z] - cos_angle * sin_z[z];  // sin(θ − θ_z)
            const auto [u_zeta, u_slope] = power((1 + cos_shifted) / 2);
            const double term = 2 * u_zeta, term_slope = -u_slope * sin_shifted;
            terms[s * sections + z] = {term * radius * fp * fq, term * (radius_slope * fp + radius * fp_slope) * fq,
                                       term * (radius_slope * fq + radius * fq_slope) * fp,
                                       term_slope * angle_slope * radius * fp * fq};
          }
        }
        triplet(i, pq, terms_.radial_width + pair_of(p.species, q.species, terms_.species) * terms_.angular_block,
                terms.data());
      }
  }
}

std::vector<double> FrameDescriptor::values() const {
  std::vector<double> phi(static_cast<size_t>(atoms_ * terms_.width), 0.0);
  const auto radial = static_cast<size_t>(spec_.radial_divisions), block = static_cast<size_t>(terms_.angular_block);
  visit(
      [&](int64_t i, const Neighbour&, int64_t slot, const double* values, const double*) {
        double* row = &phi[static_cast<size_t>(i * terms_.width + slot)];
        for (size_t r = 0; r < radial; ++r) row[r] += values[r];
      },
      [&](int64_t i, const Triplet&, int64_t slot, const AngularTerm* terms) {
        double* row = &phi[static_cast<size_t>(i * terms_.width + slot)];
        for (size_t t = 0; t < block; ++t) row[t] += terms[t].value;
      });
  return phi;
}

FrameDescriptor::Gradient FrameDescriptor::transpose_times(const double* g) const {
  Gradient out;
  out.positions.assign(static_cast<size_t>(3 * atoms_), 0.0);
  out.virial.fill(0.0);
  const auto add = [&](int64_t i, const Neighbour& n, const Vec& by_v) {  // ∂/∂v of the neighbour n of atom i
    for (size_t c = 0; c < 3; ++c) {
      out.positions[static_cast<size_t>(3 * n.j) + c] += by_v[c];
      out.positions[static_cast<size_t>(3 * i) + c] -= by_v[c];
      for (size_t b = 0; b < 3; ++b) out.virial[3 * c + b] += by_v[c] * n.v[b];
    }
  };
  const auto radial = static_cast<size_t>(spec_.radial_divisions), block = static_cast<size_t>(terms_.angular_block);
  visit(
      [&](int64_t i, const Neighbour& n, int64_t slot, const double*, const double* slopes) {
        const double* w = g + i * terms_.width + slot;
        double by_d = 0;  // Σ g ∂G/∂d
        for (size_t r = 0; r < radial; ++r) by_d += w[r] * slopes[r];
        const double s = by_d / n.d;
        add(i, n, {s * n.v[0], s * n.v[1], s * n.v[2]});
      },
      [&](int64_t i, const Triplet& pq, int64_t slot, const AngularTerm* terms) {
        const double* w = g + i * terms_.width + slot;
        double by_dp = 0, by_dq = 0, by_cosine = 0;  // Σ g ∂G/∂d_p, Σ g ∂G/∂d_q, Σ g ∂G/∂c
        for (size_t t = 0; t < block; ++t) {
          by_dp += w[t] * terms[t].by_dp;
          by_dq += w[t] * terms[t].by_dq;
          by_cosine += w[t] * terms[t].by_cosine;
        }
        const Neighbour &p = pq.p, &q = pq.q;
        Vec by_p{}, by_q{};
        for (size_t c = 0; c < 3; ++c) {
          by_p[c] = by_dp * p.v[c] / p.d + by_cosine * pq.cosine_by_p[c];
          by_q[c] = by_dq * q.v[c] / q.d + by_cosine * pq.cosine_by_q[c];
        }
        add(i, p, by_p);
        add(i, q, by_q);
      });
  return out;
}

std::vector<double> FrameDescriptor::times(const double* r) const {
  std::vector<double> out(static_cast<size_t>(atoms_ * terms_.width), 0.0);
  const auto moved = [&](int64_t i, const Neighbour& n) {  // the change of v_n: r_j − r_i
    return Vec{r[3 * n.j] - r[3 * i], r[3 * n.j + 1] - r[3 * i + 1], r[3 * n.j + 2] - r[3 * i + 2]};
  };
  const auto radial = static_cast<size_t>(spec_.radial_divisions), block = static_cast<size_t>(terms_.angular_block);
  visit(
      [&](int64_t i, const Neighbour& n, int64_t slot, const double*, const double* slopes) {
        const double change = dot(n.v, moved(i, n)) / n.d;  // of the distance
        double* row = &out[static_cast<size_t>(i * terms_.width + slot)];
        for (size_t k = 0; k < radial; ++k) row[k] += slopes[k] * change;
      },
      [&](int64_t i, const Triplet& pq, int64_t slot, const AngularTerm* terms) {
        const Vec dp = moved(i, pq.p), dq = moved(i, pq.q);
        const double change_p = dot(pq.p.v, dp) / pq.p.d, change_q = dot(pq.q.v, dq) / pq.q.d;
        const double change_cosine = dot(pq.cosine_by_p, dp) + dot(pq.cosine_by_q, dq);
        double* row = &out[static_cast<size_t>(i * terms_.width + slot)];
        for (size_t t = 0; t < block; ++t)
          row[t] += terms[t].by_dp * change_p + terms[t].by_dq * change_q + terms[t].by_cosine * change_cosine;
      });
  return out;
}

std::vector<double> frame_descriptor(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& elements,
                                     const std::vector<int64_t>& numbers, const double* positions,
                                     const neighbours::Cell& cell) {
  return FrameDescriptor(spec, elements, numbers, positions, cell).values();
}

}  // namespace gradfit::model::descriptor
