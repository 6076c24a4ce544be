#pragma once
// A saved run as a TorchScript module, for use outside gradfit_dist (Python's torch.jit.load, C++'s
// torch::jit::load); see docs/use.md, "Export".
#include <torch/script.h>

#include <string>

#include "io/saved_run.h"

namespace gradfit::inference {

// The module of `run`, built in C++ (no Python involved), in the run's dtype:
//   forward(x: B×n) -> V: B                (x is converted to the model's dtype)
//   gradient(x: B×n) -> dV/dx: B×n         (the backward sweep written out for the activation: no autograd, so it
//                                           works under torch.no_grad() too)
// Parameters weight0, bias0, ..., weight<L>, bias<L> (layer i's weight: out × in, as layers.i.* in the results);
// string attributes run_name, run_id, activation, architecture, dtype, features; methods features(x) and
// features_transpose(x, g), φ and Jᵀg (model/features.h: Features::script); `numbers` (List[int], the atomic numbers)
// where the training data recorded them.
// A run of model.features atom_centered (module __torch__.gradfit.AtomsPotential; trained on the fixed layout or on
// frames) takes any structure of its elements instead, a molecule or atoms in a cell with periodic directions:
//   forward(x: B×3a, numbers: a, cell=None, pbc=None) -> E: B
//       (Σ_i NN_{Z_i}(G_i) + Σ_i b_{Z_i}, the element energies in float64; G over the images within the cutoffs)
//   gradient(x, numbers, cell=None, pbc=None) -> dE/dx: x's shape   (by autograd: not under torch.no_grad())
//   energy_gradient_virial(x, numbers, cell=None, pbc=None) -> (E: B, dE/dx: x's shape, W: B×3×3)
//       (W_ab = ∂E/∂ε_ab under the strain x → (1 + ε) x of atoms and cell together, as eval's virial; autograd too)
// x: B frames of the a atoms (B×3a or B×a×3, Å); cell: 3×3 (rows: the lattice vectors a, b, c, Å) for every frame,
// or B×3×3; pbc: 3 or B×3 booleans (None with a cell: periodic along a, b and c). Without a cell, or where pbc is
// all false, the atoms are a molecule. A non-periodic direction's vector may be anything (ASE writes zeros). Parameters
// <symbol>_weight<i>, <symbol>_bias<i> per element, buffers elements (int64, ascending) and element_energies
// (float64), attribute element_names. An error names what is wrong: an atom of another element, a position that is
// not finite, periodic lattice vectors that span no volume, x, cell or pbc of another shape.
torch::jit::Module scripted_potential(const io::SavedRun& run);

// Defines the atom_centered module's methods, parameters and buffers on `module` (inference/export_atoms.cpp).
void define_atoms_potential(torch::jit::Module& module, const io::SavedRun& run);

// Saves scripted_potential(run) to `path` whole or not at all (a temporary beside it, renamed). Throws IoError.
// One rank.
void export_model(const io::SavedRun& run, const std::string& path);

}  // namespace gradfit::inference
