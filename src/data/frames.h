#pragma once
// scripts/ase_import.py's frames layout (frames of any atoms, with or without a periodic cell) read by shard: each
// rank a contiguous run of whole frames holding about the same number of atoms (sharding by work), its rows only.
// Training reads it through data/dataset.h (Dataset::frames).
#include <cstdint>
#include <string>
#include <vector>

#include "model/neighbours.h"

namespace gradfit::data {

// Frames [first_frame, first_frame + frames) and their atoms [first_atom, first_atom + atoms).
struct FramesShard {
  int64_t first_frame = 0, frames = 0, first_atom = 0, atoms = 0;
};

// Rank r of R takes the frames whose first atom's index a (counting every frame's atoms in order) has
// r · A / R ≤ a < (r + 1) · A / R, A the atoms of all frames: every frame goes to exactly one rank, in order, and a
// rank's atoms differ from A / R by less than its largest frame. `atoms_per_frame`: each frame's atom count (≥ 1).
FramesShard frames_shard(const std::vector<int64_t>& atoms_per_frame, int rank, int ranks);

// One rank's frames, float64.
struct Frames {
  FramesShard shard;
  int64_t total_frames = 0, total_atoms = 0;
  std::vector<int64_t> atoms;           // per frame
  std::vector<double> positions, grad;  // per atom, 3 each (Å, eV/Å)
  std::vector<int64_t> numbers;         // per atom
  std::vector<double> values;           // per frame; empty without the dataset `value`
  std::vector<model::neighbours::Cell> cells;
};

// The shape of a frames file, validated without reading its positions: the frame and atom counts, whether it has
// energies, and the elements of all its atoms (ascending atomic numbers). Throws read_frames's errors about the
// datasets' shapes and the atom counts, and one naming the first atom (its frame) that is no element. One rank.
struct FramesLayout {
  int64_t frames = 0, atoms = 0;
  bool has_values = false;
  std::vector<int64_t> elements;
};
FramesLayout inspect_frames(const std::string& path);

// Each of `frames`' frames' Σ_i b_{Z_i} over its atoms (model::atoms_energy_of), for element energies b of the
// ascending `elements` (each frame's atoms one of them).
std::vector<double> element_energy_sums(const Frames& frames, const std::vector<double>& element_energies,
                                        const std::vector<int64_t>& elements);

// Reads rank `rank` of `ranks`'s frames of the file at `path` (attribute layout = "frames"). Throws DataError
// naming the file, the dataset and, where one is at fault, the frame: a missing dataset or one of the wrong
// shape, a frame of no atoms, atom counts that do not add up to the atoms' datasets, an atomic number that is no
// element, a pbc flag other than 0 and 1. One rank (each reads its own rows).
Frames read_frames(const std::string& path, int rank, int ranks);

}  // namespace gradfit::data
