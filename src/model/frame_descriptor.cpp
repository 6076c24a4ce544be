#include "model/frame_descriptor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

namespace gradfit::model::descriptor {
namespace {

constexpr double kPi = 3.14159265358979323846;

double cutoff_function(double d, double rc) {
  return d < rc ? 0.5 * std::cos(kPi * d / rc) + 0.5 : 0.0;
}

// The shift grids (as features_atom_centered.cpp's tables) and the layout of one atom's row.
struct Terms {
  std::vector<double> radial_shifts, angular_shifts, angle_shifts;
  int64_t species = 0, width = 0, radial_width = 0, angular_block = 0;
};

std::vector<double> grid(double start, double stop, int64_t divisions) {
  std::vector<double> shifts;
  for (int64_t k = 0; k < divisions; ++k)
    shifts.push_back(start + static_cast<double>(k) * (stop - start) / static_cast<double>(divisions));
  return shifts;
}

Terms terms_of(const config::AtomCenteredSpec& spec, int64_t species) {
  Terms t;
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

// One neighbour of an atom: its element, the vector to it and its length.
struct Neighbour {
  int64_t species;
  std::array<double, 3> v;
  double d;
};

void add_radial(const config::AtomCenteredSpec& spec, const Terms& t, const Neighbour& n, double* row) {
  if (n.d >= spec.radial_cutoff) return;
  const double fc = cutoff_function(n.d, spec.radial_cutoff);
  for (size_t r = 0; r < t.radial_shifts.size(); ++r) {
    const double e = n.d - t.radial_shifts[r];
    row[n.species * spec.radial_divisions + static_cast<int64_t>(r)] += 0.25 * std::exp(-spec.radial_eta * e * e) * fc;
  }
}

// The pair (s, t), s ≤ t, of S species in row-major order: S(S+1)/2 of them.
int64_t pair_of(int64_t s, int64_t t, int64_t species) {
  const int64_t lo = std::min(s, t), hi = std::max(s, t);
  return lo * species - lo * (lo - 1) / 2 + (hi - lo);
}

void add_angular(const config::AtomCenteredSpec& spec, const Terms& t, const Neighbour& p, const Neighbour& q,
                 double* row) {
  const double cosine = (p.v[0] * q.v[0] + p.v[1] * q.v[1] + p.v[2] * q.v[2]) / std::max(p.d * q.d, 1e-10);
  const double angle = std::acos(0.95 * cosine);
  const double fc = cutoff_function(p.d, spec.angular_cutoff) * cutoff_function(q.d, spec.angular_cutoff);
  double* block = row + t.radial_width + pair_of(p.species, q.species, t.species) * t.angular_block;
  for (size_t a = 0; a < t.angular_shifts.size(); ++a) {
    const double e = (p.d + q.d) / 2 - t.angular_shifts[a];
    const double radius = std::exp(-spec.angular_eta * e * e) * fc;
    for (size_t z = 0; z < t.angle_shifts.size(); ++z)
      block[static_cast<int64_t>(a * t.angle_shifts.size() + z)] +=
          2 * std::pow((1 + std::cos(angle - t.angle_shifts[z])) / 2, spec.zeta) * radius;
  }
}

}  // namespace

std::vector<double> frame_descriptor(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& elements,
                                     const std::vector<int64_t>& numbers, const double* positions,
                                     const neighbours::Cell& cell) {
  const auto atoms = static_cast<int64_t>(numbers.size());
  const std::vector<int64_t> species = species_of(elements, numbers);
  const Terms t = terms_of(spec, static_cast<int64_t>(elements.size()));
  const auto pairs = neighbours::within(positions, atoms, cell, std::max(spec.radial_cutoff, spec.angular_cutoff));
  std::vector<double> phi(static_cast<size_t>(atoms * t.width), 0.0);
  std::vector<Neighbour> close;  // atom i's neighbours within the angular cutoff
  for (size_t p = 0; p < pairs.size();) {
    const int64_t i = pairs.i[p];
    double* row = phi.data() + i * t.width;
    close.clear();
    for (; p < pairs.size() && pairs.i[p] == i; ++p) {
      Neighbour n{species[static_cast<size_t>(pairs.j[p])], {}, 0};
      for (size_t c = 0; c < 3; ++c) {
        n.v[c] = positions[3 * pairs.j[p] + static_cast<int64_t>(c)] - positions[3 * i + static_cast<int64_t>(c)];
        for (size_t k = 0; k < 3; ++k) n.v[c] += static_cast<double>(pairs.shift[p][k]) * cell.vectors[k][c];
      }
      n.d = std::sqrt(n.v[0] * n.v[0] + n.v[1] * n.v[1] + n.v[2] * n.v[2]);
      add_radial(spec, t, n, row);
      if (n.d < spec.angular_cutoff) close.push_back(n);
    }
    for (size_t a = 0; a < close.size(); ++a)
      for (size_t b = a + 1; b < close.size(); ++b) add_angular(spec, t, close[a], close[b], row);
  }
  return phi;
}

}  // namespace gradfit::model::descriptor
