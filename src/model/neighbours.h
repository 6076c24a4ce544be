#pragma once
// Neighbour lists of one frame: every ordered pair of atoms closer than a cutoff, with the periodic images of its cell
// where it has one. A cell list: O(atoms) per frame at a fixed density and cutoff, for triclinic cells and for
// cutoffs longer than half a cell (several images of one neighbour, and an atom's own images). No LibTorch here.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gradfit::model::neighbours {

// A frame's cell: rows are the lattice vectors a, b, c (Å), `periodic` per direction (ASE's cell and pbc). A
// non-periodic direction's vector may be anything (ASE writes zeros); without a periodic direction the cell is not
// used.
struct Cell {
  std::array<std::array<double, 3>, 3> vectors{};
  std::array<bool, 3> periodic{false, false, false};
  bool any_periodic() const { return periodic[0] || periodic[1] || periodic[2]; }
};

// Ordered pairs (i, j, shift) with |r_j + shift · H − r_i| < cutoff (H: the cell's rows), i ≠ j or shift ≠ 0, each
// pair once in both orders (j, i, −shift); sorted by i, then j, then shift, so that a sum over them does not depend
// on how they were found. A shift is 0 along a direction that is not periodic.
struct Pairs {
  std::vector<int64_t> i, j;
  std::vector<std::array<int64_t, 3>> shift;  // the image of j: multiples of a, b and c
  size_t size() const { return i.size(); }
};

// The pairs of `atoms` atoms at `positions` (atoms × 3, Å), which may lie anywhere (outside the cell too). Throws
// std::invalid_argument with a one-line reason: a cutoff that is not a finite number > 0, a position that is not
// finite, or periodic lattice vectors that span no volume (a zero vector, or two along one line, or three in a
// plane).
Pairs within(const double* positions, int64_t atoms, const Cell& cell, double cutoff);

// The same by brute force, every pair against every image that can be close enough (the tests' reference):
// O(atoms² × images).
Pairs within_brute_force(const double* positions, int64_t atoms, const Cell& cell, double cutoff);

}  // namespace gradfit::model::neighbours
