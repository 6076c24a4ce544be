#pragma once
// The gradient-matching loss and its weight gradient written out by hand for the MLP: one forward sweep that
// computes σ, σ' and σ'' of every hidden layer in one pass, the backward sweep that gives dV/dx, and the reverse of
// both sweeps as a handful of matrix products per layer (12 flops per weight and sample in all). It computes the
// same numbers as double backward through autograd (model/loss.h), which stays the reference and the fallback.
//
// Rows are processed in chunks of a fixed size with the weight gradients accumulated, so the working memory is
// set by the chunk, not by the number of samples. Buffers are allocated on first use and reused; a step makes no
// host synchronisation.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/mlp.h"

namespace gradfit::model {

class AnalyticLoss {
 public:
  // `chunk_rows` > 0: rows per chunk.
  AnalyticLoss(Mlp model, int64_t chunk_rows);

  // Adds to grads[i] (one tensor per model->parameters() entry, same shapes) the gradient of
  //   loss = grad_sse / (count × n) + value_weight × value_sse / count
  // over the rows of x (B×n), grad_samples (B×n) and values (B, or undefined without a value term), and adds the
  // rows' grad_sse and value_sse to sums[0] and sums[1]. Same definitions as gradient_matching_loss.
  void accumulate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                  double value_weight, int64_t count, std::vector<torch::Tensor>& grads, torch::Tensor& sums);

  // Only adds grad_sse and value_sse to sums[0] and sums[1] (validation).
  void evaluate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                double value_weight, torch::Tensor& sums);

  int64_t chunk_rows() const { return chunk_rows_; }

 private:
  struct Layer {              // one hidden layer's chunk buffers, rows × width
    torch::Tensor h, s1, s2;  // σ(z), σ'(z), σ''(z)
    torch::Tensor a;          // ∂V/∂h, the backward sweep
    torch::Tensor d;          // ∂V/∂z = a ⊙ σ'
    torch::Tensor d_bar;      // adjoint of d in the reverse sweep
  };
  void ensure_buffers(const torch::Tensor& like);
  // Forward and backward sweeps over `rows` rows; leaves dV/dx in g_ and V in v_ (when `with_value`).
  void sweeps(const torch::Tensor& x, int64_t rows, bool with_value);
  void chunk(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
             double value_weight, int64_t count, std::vector<torch::Tensor>& grads, torch::Tensor& sums);

  Mlp model_;
  int64_t chunk_rows_;
  std::vector<Layer> layers_;                        // hidden layers
  torch::Tensor g_, r_;                              // dV/dx and its residual / adjoint, rows × n
  torch::Tensor v_, v_bar_;                          // V and its adjoint, rows × 1
  torch::Tensor z_bar_, h_bar_, h_bar_next_, ones_;  // scratch, rows × widest, and rows of ones
};

}  // namespace gradfit::model
