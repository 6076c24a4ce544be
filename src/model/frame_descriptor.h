#pragma once
// The atom_centered descriptor (TorchANI's AEV, model/features_atom_centered.h) of one frame of any size, with the
// periodic images of its cell: each atom's radial and angular terms summed over its neighbours' images within the
// cutoffs (model/neighbours.h), for a model of given elements. The values only, by plain loops (no LibTorch): the
// layout of frames of many sizes (issue 37) builds on it; the fixed molecule of today's data files keeps its own
// tables and kernels (model/descriptor_kernels.h), which this equals on a molecule without a cell.
#include <array>
#include <cstdint>
#include <vector>

#include "config/config.h"
#include "model/neighbours.h"

namespace gradfit::model::descriptor {

// The closest two atoms (or an atom and an image) of a frame may be: closer is no physical structure (the
// shortest bond, H₂'s, is 0.74 Å), and the descriptor's slopes divide by the distance.
constexpr double kMinDistance = 0.1;

// One neighbour of an atom: the atom it is an image of, its element's index, the vector v to it and its length d.
struct Neighbour {
  int64_t j, species;
  std::array<double, 3> v;
  double d;
};

// A frame's descriptor G (atoms × w) with its Jacobian by the positions, applied from the terms' slopes: atoms of
// atomic numbers `numbers` (each one of the ascending `elements`) at `positions` (atoms × 3, Å) in `cell`. Throws
// std::invalid_argument naming the first atom of another element, two atoms closer than kMinDistance (or an atom
// and an image), and what neighbours::within refuses.
class FrameDescriptor {
 public:
  FrameDescriptor(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& elements,
                  const std::vector<int64_t>& numbers, const double* positions, const neighbours::Cell& cell);
  int64_t width() const { return terms_.width; }  // w, per atom
  // w for a model of `species` elements.
  static int64_t width_of(const config::AtomCenteredSpec& spec, int64_t species) {
    return terms_of(spec, species).width;
  }
  // Atom after atom, w numbers each (features_atom_centered.h's order: the radial terms per neighbour element, then
  // the angular terms per unordered pair of neighbour elements).
  std::vector<double> values() const;
  // For g (atoms × w): Jᵀ g = Σ g ∂G/∂x (atoms × 3), and the virial W_ab = Σ over the neighbour vectors v of
  // (Σ g ∂G/∂v)_a v_b, the derivative of Σ g G under the strain x → (1 + ε) x of atoms and cell together at ε = 0.
  struct Gradient {
    std::vector<double> positions;
    std::array<double, 9> virial;  // row-major
  };
  Gradient transpose_times(const double* g) const;
  // For r (atoms × 3): J r = Σ ∂G/∂x r (atoms × w).
  std::vector<double> times(const double* r) const;

 private:
  template <class OnPair, class OnTriplet>
  void visit(OnPair pair, OnTriplet triplet) const;

  // The shift grids and the layout of one atom's row (w = width numbers).
  struct Terms {
    std::vector<double> radial_shifts, angular_shifts, angle_shifts;
    int64_t species = 0, width = 0, radial_width = 0, angular_block = 0;
  };
  static Terms terms_of(const config::AtomCenteredSpec& spec, int64_t species);

  config::AtomCenteredSpec spec_;
  Terms terms_;
  int64_t atoms_ = 0;
  std::vector<Neighbour> near_;  // atom i's neighbours: near_[first_[i]], ..., near_[first_[i + 1] − 1]
  std::vector<int64_t> first_;
};

// FrameDescriptor(...).values().
std::vector<double> frame_descriptor(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& elements,
                                     const std::vector<int64_t>& numbers, const double* positions,
                                     const neighbours::Cell& cell);

}  // namespace gradfit::model::descriptor
