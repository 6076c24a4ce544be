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

// Rows per chunk when the configuration leaves it open: on the CPU enough to keep the matrix products efficient
// while a chunk's buffers stay near the caches; on a GPU enough to fill it, within a fixed memory budget.
int64_t default_chunk_rows(int64_t input_dim, const std::vector<int64_t>& widths, torch::ScalarType dtype,
                           torch::Device device);

class AnalyticLoss {
 public:
  // `chunk_rows` > 0: rows per chunk. Keeps views of the model's weights: build it after the model has its final
  // device and storage (flatten_parameters), and update the weights in place only.
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
  struct LayerViews {         // one hidden layer's chunk buffers, rows × width
    torch::Tensor h, s1, s2;  // σ(z), σ'(z), σ''(z)
    torch::Tensor a;          // ∂V/∂h, the backward sweep
    torch::Tensor d;          // ∂V/∂z = a ⊙ σ'
    torch::Tensor d_bar;      // adjoint of d in the reverse sweep
    torch::Tensor z_bar;      // scratch shared by the layers: adjoint of z
    torch::Tensor scratch;    // ā_l, then h̄_l (one of two scratch blocks, alternating by layer)
  };
  struct Views {  // the buffers cut for a chunk of `rows` rows
    int64_t rows = -1;
    std::vector<LayerViews> layers;  // hidden layers
    torch::Tensor g, r, r_flat;      // dV/dx, then its residual and adjoint, rows × n
    torch::Tensor v, v_bar, v_bar_flat, ones;
  };
  // The views for `rows` rows, cut from one allocation made on first use (again if the dtype or device changes);
  // the full chunk and the last other size are cached.
  Views& views(const torch::Tensor& like, int64_t rows);
  void sweeps(Views& v, const torch::Tensor& x, bool with_value);
  void chunk(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
             double value_weight, int64_t count, std::vector<torch::Tensor>& grads, torch::Tensor& sums);

  Mlp model_;
  int64_t chunk_rows_;
  std::vector<torch::Tensor> weights_, weights_t_, biases_;  // per layer, the last being the output layer
  std::vector<int64_t> widths_;                              // of the hidden layers
  int64_t input_dim_ = 0;
  torch::Tensor buffers_, ones_;
  Views cached_[2];
};

}  // namespace gradfit::model
