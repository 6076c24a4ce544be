#pragma once
// The atom_centered descriptor's work on the CPU (model/features_atom_centered.h), frame by frame on raw contiguous
// arrays: φ with J's factors, Jᵀ g and J r, each a loop over a frame's pairs and triplets that adds into the frame's
// output, so that no pair × term or triplet × term tensor is ever made. A triplet whose cutoff product is zero (one
// neighbour beyond the angular cutoff) is skipped after its factors are written. No LibTorch here: the caller splits
// the frames over its threads (each frame's outputs are its own).
#include <cstdint>

namespace gradfit::model::descriptor {

// The molecule, the parameters and the tables of pairs and triplets, as features_atom_centered.cpp builds them.
// Offsets are into one atom's row of φ's frame (a·w numbers): the first of the pair's K_R radial terms, and the
// first of the triplet's K_A × K_Z angular block.
struct Geometry {
  int64_t atoms = 0, pairs = 0, triplets = 0, width = 0;  // width: φ's numbers per frame (a·w)
  int64_t radial_divisions = 0, angular_divisions = 0, angle_sections = 0;
  double radial_cutoff = 0, angular_cutoff = 0, radial_eta = 0, angular_eta = 0, zeta = 1;
  const int64_t *pair_i = nullptr, *pair_j = nullptr, *pair_offset = nullptr;
  const int64_t *triplet_i = nullptr, *triplet_j = nullptr, *triplet_k = nullptr, *triplet_offset = nullptr;
  const double *radial_shifts = nullptr, *angular_shifts = nullptr;
  const double *angle_shift_cosines = nullptr, *angle_shift_sines = nullptr;  // cos θ_z, sin θ_z
  int64_t pair_factors() const { return 3 + radial_divisions; }
  int64_t triplet_factors() const { return 12 + 2 * angle_sections + 2 * angular_divisions; }
};

// Frames [begin, end): from x (frames × 3a) φ (frames × width, zeroed here) and the factors (frames × pairs ×
// pair_factors(), frames × triplets × triplet_factors(); the layout features_atom_centered.cpp describes).
void at(const Geometry& geometry, const float* x, float* phi, float* pair_factors, float* triplet_factors,
        int64_t begin, int64_t end);
void at(const Geometry& geometry, const double* x, double* phi, double* pair_factors, double* triplet_factors,
        int64_t begin, int64_t end);
// Jᵀ g: g (frames × width) into out (frames × 3a, zeroed here).
void transpose_times(const Geometry& geometry, const float* pair_factors, const float* triplet_factors, const float* g,
                     float* out, int64_t begin, int64_t end);
void transpose_times(const Geometry& geometry, const double* pair_factors, const double* triplet_factors,
                     const double* g, double* out, int64_t begin, int64_t end);
// J r: r (frames × 3a) into out (frames × width, zeroed here).
void times(const Geometry& geometry, const float* pair_factors, const float* triplet_factors, const float* r,
           float* out, int64_t begin, int64_t end);
void times(const Geometry& geometry, const double* pair_factors, const double* triplet_factors, const double* r,
           double* out, int64_t begin, int64_t end);

}  // namespace gradfit::model::descriptor
