// Neighbour lists with periodic images (model/neighbours.h): the cell list against brute force over every image, for
// a molecule, a cubic box, a small triclinic cell whose cutoff reaches several cells (an atom's own images among its
// neighbours), a slab and a wire whose non-periodic vectors are zero, and atoms outside their cell.
#include "model/neighbours.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace gradfit::model::neighbours {
namespace {

using Rows = std::array<std::array<double, 3>, 3>;

Cell cell_of(const Rows& vectors, std::array<bool, 3> periodic) {
  Cell cell;
  cell.vectors = vectors;
  cell.periodic = periodic;
  return cell;
}

// `atoms` atoms at fractional coordinates uniform in [low, high) of `vectors` (any cell, periodic or not).
std::vector<double> atoms_in(const Rows& vectors, int64_t atoms, double low, double high, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(low, high);
  std::vector<double> x;
  for (int64_t a = 0; a < atoms; ++a) {
    const double s[3] = {u(rng), u(rng), u(rng)};
    for (size_t c = 0; c < 3; ++c) x.push_back(s[0] * vectors[0][c] + s[1] * vectors[1][c] + s[2] * vectors[2][c]);
  }
  return x;
}

// The two lists are the same pairs in the same order, each pair's distance below the cutoff, and each (i, j, n)
// has its (j, i, −n). Returns how many pairs join an atom to its own image.
int64_t expect_same(const Pairs& found, const Pairs& reference, const std::vector<double>& x, const Cell& cell,
                    double cutoff) {
  EXPECT_GT(reference.size(), 0u);
  EXPECT_EQ(found.i, reference.i);
  EXPECT_EQ(found.j, reference.j);
  EXPECT_EQ(found.shift, reference.shift);
  int64_t own_images = 0;
  for (size_t p = 0; p < found.size(); ++p) {
    double d2 = 0;
    for (size_t c = 0; c < 3; ++c) {
      double d = x[3 * static_cast<size_t>(found.j[p]) + c] - x[3 * static_cast<size_t>(found.i[p]) + c];
      for (size_t k = 0; k < 3; ++k) d += static_cast<double>(found.shift[p][k]) * cell.vectors[k][c];
      d2 += d * d;
    }
    EXPECT_LT(std::sqrt(d2), cutoff);
    own_images += found.i[p] == found.j[p];
    bool mirrored = false;
    for (size_t q = 0; q < found.size() && !mirrored; ++q)
      mirrored = found.i[q] == found.j[p] && found.j[q] == found.i[p] &&
                 found.shift[q] == std::array<int64_t, 3>{-found.shift[p][0], -found.shift[p][1], -found.shift[p][2]};
    EXPECT_TRUE(mirrored) << "pair " << p;
  }
  return own_images;
}

int64_t check_against_brute_force(const std::vector<double>& x, const Cell& cell, double cutoff) {
  const auto atoms = static_cast<int64_t>(x.size() / 3);
  return expect_same(within(x.data(), atoms, cell, cutoff), within_brute_force(x.data(), atoms, cell, cutoff), x, cell,
                     cutoff);
}

TEST(Neighbours, MoleculeWithoutACell) {
  const Rows box{{{6, 0, 0}, {0, 6, 0}, {0, 0, 6}}};
  const auto x = atoms_in(box, 30, 0, 1, 1);
  EXPECT_EQ(check_against_brute_force(x, Cell{}, 3.0), 0);
}

TEST(Neighbours, CubicBox) {
  const Rows box{{{8, 0, 0}, {0, 8, 0}, {0, 0, 8}}};
  const auto x = atoms_in(box, 40, 0, 1, 2);
  check_against_brute_force(x, cell_of(box, {true, true, true}), 3.5);
}

// A cutoff of about two cells: neighbours appear in several images, atoms see their own images.
TEST(Neighbours, SmallTriclinicCellAndALongCutoff) {
  const Rows cell{{{3.0, 0, 0}, {1.5, 2.8, 0}, {0.7, 0.9, 2.6}}};
  const auto x = atoms_in(cell, 4, 0, 1, 3);
  EXPECT_GT(check_against_brute_force(x, cell_of(cell, {true, true, true}), 5.2), 0);
}

TEST(Neighbours, SlabAndWireWithZeroVectors) {
  const Rows slab{{{5, 0, 0}, {2, 4.5, 0}, {0, 0, 0}}};
  auto x = atoms_in({{{5, 0, 0}, {2, 4.5, 0}, {0, 0, 7}}}, 25, 0, 1, 4);
  check_against_brute_force(x, cell_of(slab, {true, true, false}), 4.0);
  const Rows wire{{{0, 0, 0}, {0, 0, 0}, {0.5, 0.3, 2.5}}};
  x = atoms_in({{{6, 0, 0}, {0, 6, 0}, {0.5, 0.3, 2.5}}}, 12, 0, 1, 5);
  EXPECT_GT(check_against_brute_force(x, cell_of(wire, {false, false, true}), 3.0), 0);
}

// Atoms anywhere, several cells away from the cell at the origin: the shifts are those of the atoms as given.
TEST(Neighbours, AtomsOutsideTheirCell) {
  const Rows cell{{{4.0, 0.3, 0}, {0.5, 4.2, 0}, {0.2, 0.4, 3.8}}};
  const auto x = atoms_in(cell, 20, -2.5, 3.5, 6);
  check_against_brute_force(x, cell_of(cell, {true, true, true}), 3.3);
  check_against_brute_force(x, cell_of(cell, {true, false, true}), 3.3);
}

TEST(Neighbours, BadInputIsOneReason) {
  const std::vector<double> x{0, 0, 0, 1, 0, 0};
  const auto message = [&](const Cell& cell, double cutoff, const std::vector<double>& at) -> std::string {
    try {
      within(at.data(), static_cast<int64_t>(at.size() / 3), cell, cutoff);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no error";
  };
  const Rows flat{{{3, 0, 0}, {6, 0, 0}, {0, 0, 3}}};
  EXPECT_NE(message(cell_of(flat, {true, true, true}), 2, x).find("span no volume"), std::string::npos);
  EXPECT_NE(message(cell_of(flat, {true, true, false}), 2, x).find("span no volume"), std::string::npos);
  EXPECT_NE(message(cell_of({}, {true, false, false}), 2, x).find("span no volume"), std::string::npos);
  EXPECT_NE(message(Cell{}, 0, x).find("cutoff must be a finite number > 0"), std::string::npos);
  EXPECT_NE(message(Cell{}, 2, {0, 0, 0, NAN, 0, 0}).find("atom 1 has a position that is not finite"),
            std::string::npos);
}

}  // namespace
}  // namespace gradfit::model::neighbours
