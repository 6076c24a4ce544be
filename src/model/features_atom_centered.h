#pragma once
// model.features atom_centered: x holds the Cartesian coordinates of a atoms (n = 3a) of the elements `numbers`
// names; φ holds each atom's ANI descriptor G_i of its neighbours (TorchANI's AEV: config::AtomCenteredSpec), atom
// i's at columns [i·w, (i+1)·w), and the model is Σ_i NN_{Z_i}(G_i), one network per element (model/mlp.h). Per
// atom: the radial terms per neighbour element (S·radial_divisions), then the angular terms per unordered pair of
// neighbour elements (S(S+1)/2 of them, TorchANI's order; angular_divisions·angle_sections each), for the S distinct
// elements in ascending atomic number. As TorchANI computes it: the angle θ_ijk = acos(0.95 cos θ_ijk), the radial
// terms with the factor ¼. Every pair and triplet of the molecule is evaluated, those beyond a cutoff contributing
// zero: the molecules of today's data files have tens of atoms (a neighbour list comes with frames of any size).
// J is applied from the descriptor's structure: at() keeps, per pair and triplet, the terms' slopes by the
// distances and the angle's cosine, and the unit vectors along which those change; on the CPU by the kernels of
// model/descriptor_kernels.h, elsewhere by LibTorch's operations. phi() stays differentiable operations, the
// reference.
#include <cstdint>
#include <vector>

#include "common/elements.h"
#include "config/config.h"
#include "model/descriptor_kernels.h"
#include "model/feature_map.h"

namespace gradfit::model {

// The descriptor's width per atom (w) for S distinct elements.
int64_t atom_descriptor_width(const config::AtomCenteredSpec& spec, int64_t elements);
// The distinct atomic numbers of `numbers`, ascending.
std::vector<int64_t> distinct_elements(const std::vector<int64_t>& numbers);

class AtomCenteredFeatures final : public FeatureMap {
 public:
  // The atoms of atomic numbers `numbers`, for a model of the elements `elements` (ascending; empty: those of
  // `numbers`), each of which is one of them.
  AtomCenteredFeatures(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& numbers,
                       const std::vector<int64_t>& elements = {});
  const char* name() const override { return "atom_centered"; }
  torch::Tensor phi(const torch::Tensor& x) const override;
  // φ, the pairs' factors of J in `first` and the triplets' in `second` (features_atom_centered.cpp says which).
  FeatureRows at(const torch::Tensor& x) const override;
  torch::Tensor transpose_times(const FeatureRows& rows, const torch::Tensor& g) const override;
  torch::Tensor times(const FeatureRows& rows, const torch::Tensor& r) const override;
  // Per pair and triplet J's factors, and the work tensors of a product by J (about 4 numbers a term).
  double elements_per_row() const override;
  // Two atoms at one place (a distance without a derivative).
  RowProblem first_problem(const torch::Tensor& x) const override;
  // None: the export of this kind takes any structure of the elements, not this layout's atoms, and writes a
  // module of its own (inference/export_atoms.cpp), which reads script_buffers.
  std::string script() const override;
  // The descriptor's tables for that module: radial_shifts, angular_shifts, angle_shifts (in `dtype`, the values
  // training uses) and pair_of_elements (S × S: TorchANI's index of the unordered pair of elements s, t).
  NamedTensors script_buffers(torch::Dtype dtype) const override;
  const AtomLayout* atom_layout() const override { return &layout_; }
  // φ, J's factors and the products by LibTorch's operations on the CPU too, as on a GPU, instead of the CPU's
  // kernels (model/descriptor_kernels.h): lets the tests check the GPU's code path on a CPU.
  void use_tensor_operations() { tensor_operations_ = true; }

 private:
  bool on_kernels(const torch::Tensor& t) const;
  FeatureRows kernel_at(const torch::Tensor& x) const;
  torch::Tensor kernel_transpose(const FeatureRows& rows, const torch::Tensor& g) const;
  torch::Tensor kernel_times(const FeatureRows& rows, const torch::Tensor& r) const;
  // The pairs' terms (B × pairs × K_R) and the triplets' (B × triplets × K_A·K_Z) of the atoms (B × a × 3), by
  // differentiable operations; with `factors`, J's factors there too (in the layout the kernels write).
  torch::Tensor pair_terms(const torch::Tensor& atoms, torch::Tensor* factors) const;
  torch::Tensor triplet_terms(const torch::Tensor& atoms, torch::Tensor* factors) const;
  // The terms summed into their atoms' slots: B × a × S·K_R and B × a × S(S+1)/2·K_A·K_Z.
  torch::Tensor radial_sum(const torch::Tensor& terms) const;
  torch::Tensor angular_sum(const torch::Tensor& terms) const;
  // Jᵀ g and J r for one model (B × m and B × n).
  torch::Tensor transpose_one(const FeatureRows& rows, const torch::Tensor& g) const;
  torch::Tensor times_one(const FeatureRows& rows, const torch::Tensor& r) const;
  const torch::Tensor& table(const torch::Tensor& like, size_t i) const { return tables_.like(like)[i]; }

  config::AtomCenteredSpec spec_;
  AtomLayout layout_;
  int64_t atoms_ = 0, pairs_of_elements_ = 0;
  // pair_i, pair_j (ordered pairs, i ≠ j), radial_slot (i·S + s_j), triplet_i, triplet_j, triplet_k (j < k, both
  // ≠ i), angular_slot (i·S(S+1)/2 + the pair of s_j, s_k), radial_shifts, angular_shifts, angle_shifts.
  TablesLike tables_;
  descriptor::Geometry geometry_;                // the CPU tables', for the kernels
  std::vector<torch::Tensor> angle_shift_trig_;  // cos θ_z and sin θ_z (float64), the kernels' angle shifts
  bool tensor_operations_ = false;
};

}  // namespace gradfit::model
