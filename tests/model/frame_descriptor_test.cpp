// The descriptor of a frame of any size and cell (model/frame_descriptor.h): on a molecule equal to the
// atom_centered features of today's fixed molecule (another implementation: tables and kernels), and with a periodic
// cell invariant, to 1e-12, to an atom moved by a lattice vector, to a supercell, to turning cell and atoms
// together and to a permutation of atoms of one element; its Jacobian products and virial against finite
// differences.
#include "model/frame_descriptor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "model/atom_centered_molecule.h"
#include "model/features_atom_centered.h"

namespace gradfit::model::descriptor {
namespace {

using neighbours::Cell;

// max |a − b| / max |b|
double relative(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t k = 0; k < std::min(a.size(), b.size()); ++k)
    diff = std::max(diff, std::abs(a[k] - b[k])), scale = std::max(scale, std::abs(b[k]));
  return diff / scale;
}

TEST(FrameDescriptor, EqualsTheFixedMoleculesFeatures) {
  torch::manual_seed(5);
  const auto x = small_molecule::molecule_frames(6);
  for (const bool small : {true, false}) {  // the tests' short cutoffs, and ANI-1x's
    config::AtomCenteredSpec spec;
    if (small)
      spec = small_molecule::small_descriptor_spec(small_molecule::kNumbers, config::Activation::tanh).descriptor;
    const AtomCenteredFeatures features(spec, small_molecule::kNumbers);
    const auto phi = features.phi(x);
    for (int64_t f = 0; f < x.size(0); ++f) {
      const auto frame = x[f].contiguous();
      const auto ours = frame_descriptor(spec, {1, 6, 8}, small_molecule::kNumbers, frame.data_ptr<double>(), Cell{});
      const auto row = phi[f].contiguous();
      const std::vector<double> theirs(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
      EXPECT_LT(relative(ours, theirs), 1e-12) << (small ? "short cutoffs" : "ANI-1x's") << ", frame " << f;
    }
  }
}

// A triclinic cell of 6 atoms (C, O, H x4), ANI-1x's descriptor (radial cutoff 5.2 Å, longer than the cell).
struct Crystal {
  Cell cell;
  std::vector<int64_t> numbers{6, 8, 1, 1, 1, 1};
  std::vector<double> x;
};

Crystal crystal() {
  Crystal c;
  c.cell.vectors = {{{4.1, 0.0, 0.0}, {0.9, 3.8, 0.0}, {0.4, 0.7, 4.4}}};
  c.cell.periodic = {true, true, true};
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  for (size_t a = 0; a < c.numbers.size(); ++a) {
    const double s[3] = {u(rng), u(rng), u(rng)};
    for (size_t k = 0; k < 3; ++k)
      c.x.push_back(s[0] * c.cell.vectors[0][k] + s[1] * c.cell.vectors[1][k] + s[2] * c.cell.vectors[2][k]);
  }
  return c;
}

const std::vector<int64_t> kElements{1, 6, 8};

std::vector<double> descriptor_of(const Crystal& c) {
  return frame_descriptor(config::AtomCenteredSpec{}, kElements, c.numbers, c.x.data(), c.cell);
}

TEST(FrameDescriptor, PeriodicInvariances) {
  const Crystal c = crystal();
  const auto g = descriptor_of(c);
  const size_t width = g.size() / c.numbers.size();
  Crystal moved = c;  // atom 2 by a − 2c
  for (size_t k = 0; k < 3; ++k) moved.x[6 + k] += c.cell.vectors[0][k] - 2 * c.cell.vectors[2][k];
  EXPECT_LT(relative(descriptor_of(moved), g), 1e-12) << "an atom moved by a lattice vector";
  Crystal turned = c;  // cell and atoms turned together
  const double ca = std::cos(0.7), sa = std::sin(0.7), cb = std::cos(-1.1), sb = std::sin(-1.1);
  const auto turn = [&](double* v) {
    const double y = ca * v[1] - sa * v[2], z = sa * v[1] + ca * v[2];
    const double x = cb * v[0] - sb * y, y2 = sb * v[0] + cb * y;
    v[0] = x, v[1] = y2, v[2] = z;
  };
  for (size_t a = 0; a < c.numbers.size(); ++a) turn(&turned.x[3 * a]);
  for (auto& row : turned.cell.vectors) turn(row.data());
  EXPECT_LT(relative(descriptor_of(turned), g), 1e-12) << "turned";
  Crystal swapped = c;  // H atoms 2 and 5 trade places
  std::swap_ranges(swapped.x.begin() + 6, swapped.x.begin() + 9, swapped.x.begin() + 15);
  auto expected = g;
  std::swap_ranges(expected.begin() + 2 * width, expected.begin() + 3 * width, expected.begin() + 5 * width);
  EXPECT_LT(relative(descriptor_of(swapped), expected), 1e-12) << "H atoms permuted";
}

// A 2×2×2 supercell: each of its atoms has the descriptor of the atom of the cell it copies.
TEST(FrameDescriptor, SupercellRepeatsTheCell) {
  const Crystal c = crystal();
  const auto g = descriptor_of(c);
  const size_t width = g.size() / c.numbers.size();
  Crystal super;
  for (size_t k = 0; k < 3; ++k)
    for (size_t d = 0; d < 3; ++d) super.cell.vectors[k][d] = 2 * c.cell.vectors[k][d];
  super.cell.periodic = {true, true, true};
  super.numbers.clear();
  std::vector<double> expected;
  for (int n0 = 0; n0 < 2; ++n0)
    for (int n1 = 0; n1 < 2; ++n1)
      for (int n2 = 0; n2 < 2; ++n2)
        for (size_t a = 0; a < c.numbers.size(); ++a) {
          super.numbers.push_back(c.numbers[a]);
          for (size_t d = 0; d < 3; ++d)
            super.x.push_back(c.x[3 * a + d] + n0 * c.cell.vectors[0][d] + n1 * c.cell.vectors[1][d] +
                              n2 * c.cell.vectors[2][d]);
          expected.insert(expected.end(), g.begin() + static_cast<int64_t>(a * width),
                          g.begin() + static_cast<int64_t>((a + 1) * width));
        }
  EXPECT_LT(relative(descriptor_of(super), expected), 1e-12);
}

// Σ g · G of a frame, for the finite differences below.
double contracted(const Crystal& c, const std::vector<double>& g) {
  const auto values = descriptor_of(c);
  double sum = 0;
  for (size_t k = 0; k < values.size(); ++k) sum += g[k] * values[k];
  return sum;
}

std::vector<double> random_vector(size_t size, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0, 1);
  std::vector<double> v(size);
  for (auto& e : v) e = n(rng);
  return v;
}

// Jᵀ g and J r against central differences (step 1e-5 Å: the truncation, ~1e-10 of the terms' third derivatives,
// and the rounding, ~1e-16 / 1e-5 of the sums, both far below the tolerance 1e-7), and ⟨g, J r⟩ = ⟨Jᵀ g, r⟩ to
// rounding; on the periodic cell and on a molecule (no cell).
TEST(FrameDescriptor, JacobianProductsMatchFiniteDifferences) {
  for (const bool periodic : {true, false}) {
    Crystal c = crystal();
    if (!periodic) c.cell = Cell{};
    const FrameDescriptor frame(config::AtomCenteredSpec{}, kElements, c.numbers, c.x.data(), c.cell);
    const auto g = random_vector(descriptor_of(c).size(), 1), r = random_vector(c.x.size(), 2);
    const auto jt = frame.transpose_times(g.data());
    const auto jr = frame.times(r.data());
    constexpr double h = 1e-5;
    double worst = 0, scale = 0;
    for (size_t k = 0; k < c.x.size(); ++k) {
      Crystal plus = c, minus = c;
      plus.x[k] += h, minus.x[k] -= h;
      const double fd = (contracted(plus, g) - contracted(minus, g)) / (2 * h);
      worst = std::max(worst, std::abs(fd - jt.positions[k])), scale = std::max(scale, std::abs(fd));
    }
    EXPECT_LT(worst / scale, 1e-7) << (periodic ? "periodic" : "molecule") << ": Jᵀ g";
    Crystal plus = c, minus = c;
    for (size_t k = 0; k < c.x.size(); ++k) plus.x[k] += h * r[k], minus.x[k] -= h * r[k];
    const auto up = descriptor_of(plus), down = descriptor_of(minus);
    std::vector<double> fd(up.size());
    for (size_t k = 0; k < up.size(); ++k) fd[k] = (up[k] - down[k]) / (2 * h);
    EXPECT_LT(relative(jr, fd), 1e-7) << (periodic ? "periodic" : "molecule") << ": J r";
    double gjr = 0, jtgr = 0;
    for (size_t k = 0; k < g.size(); ++k) gjr += g[k] * jr[k];
    for (size_t k = 0; k < r.size(); ++k) jtgr += jt.positions[k] * r[k];
    EXPECT_LT(std::abs(gjr - jtgr) / std::abs(gjr), 1e-12);
  }
}

// The virial W_ab against the central difference of Σ g · G under the strain x → (1 + t e_a e_bᵀ) x of the atoms
// and the cell together (the stress is W / V): 1e-6 relative, as issue 37 asks of the stress.
TEST(FrameDescriptor, VirialMatchesTheStrainDerivative) {
  const Crystal c = crystal();
  const auto g = random_vector(descriptor_of(c).size(), 3);
  const auto virial = FrameDescriptor(config::AtomCenteredSpec{}, kElements, c.numbers, c.x.data(), c.cell)
                          .transpose_times(g.data())
                          .virial;
  const auto strained = [&](size_t a, size_t b, double t) {
    Crystal s = c;
    for (size_t atom = 0; atom < c.numbers.size(); ++atom) s.x[3 * atom + a] += t * c.x[3 * atom + b];
    for (size_t k = 0; k < 3; ++k) s.cell.vectors[k][a] += t * c.cell.vectors[k][b];
    return contracted(s, g);
  };
  constexpr double h = 1e-6;
  double worst = 0, scale = 0;
  for (size_t a = 0; a < 3; ++a)
    for (size_t b = 0; b < 3; ++b) {
      const double fd = (strained(a, b, h) - strained(a, b, -h)) / (2 * h);
      worst = std::max(worst, std::abs(fd - virial[3 * a + b])), scale = std::max(scale, std::abs(fd));
    }
  EXPECT_LT(worst / scale, 1e-6);
}

TEST(FrameDescriptor, AnotherElementIsNamed) {
  Crystal c = crystal();
  c.numbers[3] = 7;
  try {
    descriptor_of(c);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "atom 3 has atomic number 7, not one of the model's elements");
  }
}

}  // namespace
}  // namespace gradfit::model::descriptor
