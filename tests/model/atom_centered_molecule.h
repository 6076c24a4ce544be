#pragma once
// The small molecule the atom_centered tests of this folder share: 5 atoms (C, O, H, H, H) about a shape ~3.5 Å
// wide, with a descriptor whose cutoffs are short enough that some of its pairs fall outside them.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "config/config.h"

namespace gradfit::model::small_molecule {

inline const std::vector<int64_t> kNumbers{6, 8, 1, 1, 1};  // C, O, H, H, H

// model.features atom_centered with that descriptor, widths 6-5, float64, for atoms of `numbers`.
inline config::ModelSpec small_descriptor_spec(const std::vector<int64_t>& numbers, config::Activation activation) {
  config::ModelSpec spec;
  spec.widths = {6, 5};
  spec.activation = activation;
  spec.dtype = config::DType::float64;
  spec.features = config::FeatureKind::atom_centered;
  spec.descriptor.radial_cutoff = 3.0;
  spec.descriptor.angular_cutoff = 2.4;
  spec.descriptor.radial_eta = 4;
  spec.descriptor.angular_eta = 3;
  spec.descriptor.zeta = 4;
  spec.descriptor.radial_divisions = 4;
  spec.descriptor.angular_divisions = 2;
  spec.descriptor.angle_sections = 3;
  spec.numbers = numbers;
  return spec;
}

// `rows` frames of the 5 atoms: the shape, every coordinate moved by N(0, 0.1 Å).
inline torch::Tensor molecule_frames(int64_t rows) {
  const auto base =
      torch::tensor({0.0, 0.0, 0.0, 1.4, 0.0, 0.0, -0.6, 0.9, 0.1, -0.5, -0.9, 0.3, 2.9, 0.8, -0.4}, torch::kFloat64);
  return base + 0.1 * torch::randn({rows, 15}, torch::kFloat64);
}

}  // namespace gradfit::model::small_molecule
