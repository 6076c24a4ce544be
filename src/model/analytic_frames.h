#pragma once
// The analytic engine on frames of any size and periodic cells (the frames layout): V_f = Σ_i NN_{Z_i}(G_i) over a
// frame's atoms, G the frame's descriptor with its cell's images (model/frame_descriptor.h). A chunk of frames: each
// frame's descriptor and its neighbours once, shared by the models; each element's atoms across the chunk are the
// rows of that element's network (one AnalyticLoss each, model/analytic.h); ∂V/∂G back in each atom's place gives
// dV/dx = Jᵀ ∂V/∂G frame by frame; the loss's adjoint ∂loss/∂(dV/dx) maps to ∂loss/∂G = J ∂loss/∂(dV/dx) and
// enters each network's reverse sweeps. The descriptor and J are applied in float64; the networks run in the
// model's dtype on its device.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.h"
#include "model/analytic.h"
#include "model/frame_descriptor.h"
#include "model/loss.h"
#include "model/mlp.h"

namespace gradfit::model {

// One frame as the loss reads it: its atoms' positions (atoms × 3, Å), atomic numbers and sampled gradient
// (atoms × 3), its cell, and its energy less the element energies (read with a value term only).
struct FrameView {
  int64_t atoms = 0;
  const double* positions = nullptr;
  const int64_t* numbers = nullptr;
  const double* grad = nullptr;
  const neighbours::Cell* cell = nullptr;
  double value = 0;
};

class FramesAnalyticLoss {
 public:
  // `params`: R models' parameters as ensemble_views gives them for one network per element of `elements`
  // (ascending atomic numbers), of the widths `shape` gives; `chunk_atoms`: the most atoms of a chunk of frames (a
  // frame larger than that is a chunk of its own). Keeps views of the weights, as AnalyticLoss does.
  FramesAnalyticLoss(config::Activation activation, const std::vector<torch::Tensor>& params, const NetworkShape& shape,
                     const config::AtomCenteredSpec& descriptor, std::vector<int64_t> elements, int64_t chunk_atoms,
                     int64_t largest_frame);

  // Adds to grads (one tensor per parameter, R × shape, all networks') the gradient of each model's
  //   loss = grad_loss / (count × n) + value_weight × Σ_f ((V_f − E_f) / a_f)² / count
  // over `frames` (a_f a frame's atoms; grad_loss Σ (dV/dx − S)² over the frames' atoms' components, or huber's),
  // and adds the frames' Σ (dV/dx − S)², Σ ((V_f − E_f) / a_f)² and grad_loss to sums (R × 3). `count`: the global
  // batch's frames; n: the components per frame the loss divides by (train/batches.h: DataSplit).
  void accumulate(const std::vector<FrameView>& frames, double value_weight, int64_t count, double n,
                  std::vector<torch::Tensor>& grads, torch::Tensor& sums);
  // Only adds the sums (validation).
  void evaluate(const std::vector<FrameView>& frames, double value_weight, torch::Tensor& sums);

  // The first model's V_f (frames, without element energies), dV/dx (atoms × 3, the frames' atoms in order) and
  // virials (frames × 9, row-major: W_ab = ∂V/∂ε_ab under the strain x → (1 + ε) x of atoms and cell together, the
  // derivative model/frame_descriptor.h's transpose_times gives) at `frames`, float64 on the CPU.
  struct Predictions {
    torch::Tensor values, grads, virials;
  };
  Predictions predict(const std::vector<FrameView>& frames);
  void set_gradient_loss(const GradientLoss& loss) { gradient_loss_ = loss; }
  // Where the model's tensors live (the CPU unless set).
  void set_options(const torch::TensorOptions& options) { options_ = options; }

 private:
  struct Chunk;
  // One model on a chunk: per element its network's stage, each frame's V, and dV/dx, then dV/dx − S (float64,
  // atoms × 3), and each frame's virial (float64, frames × 9).
  struct Pass {
    std::vector<AnalyticLoss::Stage> stages;  // per element (undefined where the chunk has none of its atoms)
    torch::Tensor v, r, virials;
  };
  // The chunks of `frames`: consecutive frames of at most chunk_atoms_ atoms (or one larger frame).
  std::vector<std::pair<size_t, size_t>> chunk_bounds(const std::vector<FrameView>& frames) const;
  Chunk make_chunk(const std::vector<FrameView>& frames, size_t first, size_t last, bool with_value) const;
  void chunk(const Chunk& c, double value_weight, int64_t count, double n, std::vector<torch::Tensor>* grads,
             torch::Tensor& sums);
  Pass forward(int64_t model, const Chunk& c);
  void residual_sums(Pass& pass, const Chunk& c, const torch::Tensor& sums) const;
  void adjoints(Pass& pass, const Chunk& c, double value_weight, int64_t count, double n) const;
  void reverse(int64_t model, const Chunk& c, Pass& pass, std::vector<torch::Tensor>& grads);

  config::AtomCenteredSpec descriptor_;
  std::vector<int64_t> elements_;
  GradientLoss gradient_loss_;
  torch::TensorOptions options_ = torch::TensorOptions().dtype(torch::kFloat64);
  int64_t chunk_atoms_;
  int64_t width_ = 0;                              // the descriptor's, per atom
  NetworkParts parts_;                             // each element network's parameters and gradients
  std::vector<std::vector<AnalyticLoss>> models_;  // per model, one per element
};

}  // namespace gradfit::model
