#pragma once
// The atom_centered descriptor (TorchANI's AEV, model/features_atom_centered.h) of one frame of any size, with the
// periodic images of its cell: each atom's radial and angular terms summed over its neighbours' images within the
// cutoffs (model/neighbours.h), for a model of given elements. The values only, by plain loops (no LibTorch): the
// layout of frames of many sizes (issue 37) builds on it; the fixed molecule of today's data files keeps its own
// tables and kernels (model/descriptor_kernels.h), which this equals on a molecule without a cell.
#include <cstdint>
#include <vector>

#include "config/config.h"
#include "model/neighbours.h"

namespace gradfit::model::descriptor {

// Atom after atom, w numbers each (features_atom_centered.h's order: the radial terms per neighbour element, then the
// angular terms per unordered pair of neighbour elements), for atoms of atomic numbers `numbers` (each one of the
// ascending `elements`) at `positions` (atoms × 3, Å) in `cell`. Throws std::invalid_argument naming the first atom
// of another element, and what neighbours::within refuses.
std::vector<double> frame_descriptor(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& elements,
                                     const std::vector<int64_t>& numbers, const double* positions,
                                     const neighbours::Cell& cell);

}  // namespace gradfit::model::descriptor
