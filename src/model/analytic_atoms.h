#pragma once
// The analytic engine where φ is per atom (FeatureMap::atom_layout: model.features atom_centered), V = Σ_i
// NN_{Z_i}(G_i). A chunk of frames: φ and J's factors once, shared by the models; each element's atoms across the
// chunk's frames are the rows of that element's network, one AnalyticLoss each (model/analytic.h: a matrix product
// per layer); ∂V/∂G of every atom back in its place gives dV/dx = Jᵀ ∂V/∂φ; the loss, its sums and its adjoints are
// AnalyticLoss's; ∂loss/∂φ = J ∂loss/∂(dV/dx), split by element again, enters each network's reverse sweeps.
// An ensemble's models go one at a time through the code of a model alone (the same rounding), sharing φ and J.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/analytic.h"
#include "model/features.h"
#include "model/loss.h"

namespace gradfit::model {

class AtomsAnalyticLoss {
 public:
  // `params`: R models' parameters as ensemble_views gives them for the layout's networks (one per element, in the
  // order of AtomLayout::elements, of the widths `shape` gives); `chunk_rows`: frames per chunk; `features`: a kind
  // with an atom layout. Keeps views of the weights, as AnalyticLoss does.
  AtomsAnalyticLoss(config::Activation activation, const std::vector<torch::Tensor>& params, const NetworkShape& shape,
                    int64_t chunk_rows, const Features& features);

  // As AnalyticLoss's: grads one tensor per parameter (R × shape, all networks'), sums R × 3.
  void accumulate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                  double value_weight, int64_t count, std::vector<torch::Tensor>& grads, torch::Tensor& sums,
                  const torch::Tensor& row_weights = {});
  void evaluate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                double value_weight, torch::Tensor& sums, const torch::Tensor& row_weights = {});
  void set_gradient_loss(const GradientLoss& loss) { gradient_loss_ = loss; }

 private:
  using Rows = AnalyticLoss::Rows;  // a chunk's frames
  // One model on a chunk: dV/dx, then r = dV/dx − S and its adjoint; V, then (V − value) / a (the energy error per
  // atom, as gradient_matching_loss's) and its adjoint.
  struct Pass {
    torch::Tensor r, v;
    std::vector<AnalyticLoss::Stage> stages;  // per element
  };
  void chunk(const Rows& rows, double value_weight, int64_t count, std::vector<torch::Tensor>* grads,
             torch::Tensor& sums);
  // Each element's atoms of the chunk's frames, rows of its network's inputs (frames·atoms × width).
  std::vector<torch::Tensor> element_inputs(const torch::Tensor& phi) const;
  Pass forward(int64_t model, const Features::AtRows& at, const std::vector<torch::Tensor>& inputs, bool with_value);
  // The residuals and their sums (each frame's terms times its weight where weights are given) into sums (3).
  void residual_sums(Pass& pass, const Rows& rows, const torch::Tensor& sums) const;
  void adjoints(Pass& pass, const Rows& rows, double value_weight, int64_t count) const;
  void reverse(int64_t model, const Features::AtRows& at, Pass& pass, std::vector<torch::Tensor>& grads,
               bool with_value);

  Features features_;
  GradientLoss gradient_loss_;
  int64_t chunk_rows_;
  int64_t width_ = 0;                              // the descriptor's, per atom
  double atoms_ = 0;                               // a, the atoms of a frame
  NetworkParts parts_;                             // each element network's parameters and gradients
  std::vector<std::vector<AnalyticLoss>> models_;  // per model, one per element
  TablesLike atoms_of_element_;                    // per element, its atoms (int64)
};

}  // namespace gradfit::model
