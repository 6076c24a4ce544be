#pragma once
// The gradient-matching loss and its weight gradient written out by hand for the MLP: one forward sweep that
// computes σ, σ' and σ'' of every hidden layer in one pass, the backward sweep that gives dV/dx, and the reverse of
// both sweeps as a handful of matrix products per layer (12 flops per weight and sample in all). It computes the
// same numbers as double backward through autograd (model/loss.h), which stays the reference and the fallback.
//
// Rows are processed in chunks of a fixed size with the weight gradients accumulated, so the working memory is
// set by the chunk, not by the number of samples. Buffers are allocated on first use and reused; a step makes no
// host synchronisation.
//
// It computes for an ensemble: R models of one architecture (runs of a sweep that differ only in their weights)
// on the same rows, their weights stacked (R × out × in) and every matrix product batched over the R models, so R
// small models cost about the operations of one.
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include "model/kernels.h"
#include "model/loss.h"
#include "model/mlp.h"

namespace gradfit::model {

// Elements of AnalyticLoss's buffers per chunk row and model (in the model's dtype).
int64_t buffer_elements_per_row(int64_t input_dim, const std::vector<int64_t>& widths);

// Rows per chunk when the configuration leaves it open: on the CPU enough to keep the matrix products efficient
// while a chunk's buffers stay near the caches; on a GPU enough to fill it, within a fixed memory budget.
// The same for an ensemble, per model, so that its models accumulate their gradients over the same chunks as
// models trained alone.
int64_t default_chunk_rows(int64_t input_dim, const std::vector<int64_t>& widths, torch::ScalarType dtype,
                           torch::Device device);

// Views, one per parameter in the order of Mlp::parameters() (weight, bias per layer, of each of `networks`
// networks of `input_dim` inputs in turn), of R models' parameters stored model by model in the rows of `flat`
// (R × P): weights R × out × in, biases R × out.
std::vector<torch::Tensor> ensemble_views(const torch::Tensor& flat, int64_t input_dim,
                                          const std::vector<int64_t>& widths, int64_t networks = 1);
// The same for networks of the shape `shape` (each with its own hidden widths).
std::vector<torch::Tensor> ensemble_views(const torch::Tensor& flat, const NetworkShape& shape);

// Where each network's tensors lie among the per-parameter tensors of networks of the shape `shape` (one per
// element: ensemble_views's order), and model m's part of one network's: its parameters, or its gradients.
struct NetworkParts {
  explicit NetworkParts(const NetworkShape& shape);
  size_t tensors() const { return first.back(); }
  // tensors[first[e]], ..., tensors[first[e + 1] − 1], each narrowed to model m (1 × shape): views.
  std::vector<torch::Tensor> of(const std::vector<torch::Tensor>& tensors, int64_t model, size_t network) const;
  std::vector<size_t> first;  // per network, and the count at the end
};

class AnalyticLoss {
 public:
  // `chunk_rows` > 0: rows per chunk. Keeps views of the weights: build it after they have their final device and
  // storage (flatten_parameters), and update them in place only.
  // One model (R = 1):
  AnalyticLoss(Mlp model, int64_t chunk_rows);
  // R models: `params` as given by ensemble_views.
  AnalyticLoss(config::Activation activation, const std::vector<torch::Tensor>& params, int64_t chunk_rows);

  // Adds to grads[i] (one tensor per parameter, shaped like it: with a leading R dimension, which may be left out
  // when R = 1) the gradient of each model's
  //   loss = grad_loss / (count × n) + value_weight × value_sse / count
  // over the rows of x (B×n), grad_samples (B×n) and values (B, or undefined without a value term), and adds the
  // rows' grad_sse and value_sse to sums[r][0] and sums[r][1], and for a huber loss grad_loss to sums[r][2] (sums:
  // R × 3, or 3 when R = 1; for mse grad_loss is grad_sse). Same definitions as gradient_matching_loss, also for
  // `row_weights` (B, or undefined: all 1): each row's terms, in the loss and in the sums, times its weight.
  void accumulate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                  double value_weight, int64_t count, std::vector<torch::Tensor>& grads, torch::Tensor& sums,
                  const torch::Tensor& row_weights = {});

  // Only adds the sums (validation).
  void evaluate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                double value_weight, torch::Tensor& sums, const torch::Tensor& row_weights = {});

  // A chunk's rows: x, grad_samples, values (undefined without a value term) and weights (undefined: all 1).
  struct Rows {
    torch::Tensor x, grad_samples, values, weights;
    Rows narrow(int64_t first, int64_t rows) const;
  };
  // A chunk in two stages, for a caller that couples the rows of several networks through its own loss
  // (model/analytic_atoms.h: one network per element). forward() runs the sweeps on `inputs` (rows × inputs, rows
  // up to chunk_rows) and returns views of ∂V/∂inputs (g) and V (v, rows × 1, with `with_value`); the caller writes
  // the loss's adjoints of them into g_bar and v_bar, and reverse() adds the weight gradients to `grads` (as
  // accumulate's). The views live until the next forward(); `inputs` must too.
  struct Stage {
    torch::Tensor g, v, g_bar, v_bar;
  };
  Stage forward(const torch::Tensor& inputs, bool with_value);
  void reverse(std::vector<torch::Tensor>& grads, bool with_value);

  // An ensemble's matrix products batched over its models (bmm) on the CPU too, as on a GPU, instead of one
  // model at a time: lets the tests check the GPU's code path on a CPU. Call before the first accumulate().
  void batch_products_on_cpu() { batch_on_cpu_ = true; }
  // The loss on dV/dx − S (mse unless set).
  void set_gradient_loss(const GradientLoss& loss) { gradient_loss_ = loss; }
  // The models' input features (the identity unless set; set by the one-model constructor from the model): the
  // sweeps run on φ(x), dV/dx = Jᵀ ∂V/∂φ is compared with S, and the residual's adjoint maps back to ∂loss/∂φ
  // through J, a chunk at a time (model/features.h).
  void set_features(const Features& features) { features_ = features; }

 private:
  struct LayerViews {         // one hidden layer's chunk buffers, R × rows × width
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
    torch::Tensor x;                 // the chunk's inputs, seen by every model (R × rows × n, no copy)
    torch::Tensor g, r, r_flat;      // dV/dx, then its residual and adjoint, R × rows × n
    // (For one model every buffer drops its leading R dimension: rows × width, rows × n, ...)
    torch::Tensor v, v_bar, v_bar_flat;
    torch::Tensor ones, ones_col;  // for sums over the rows: rows, and R × rows × 1
    torch::Tensor sse;             // R × 1 × 1
  };
  // The views for `rows` rows, cut from one allocation made on first use (again if the dtype or device changes);
  // the full chunk and the last other size are cached.
  Views& views(const torch::Tensor& like, int64_t rows);
  void sweeps(Views& v, const torch::Tensor& x, bool with_value);
  // A hidden layer's σ, σ', σ'' from its pre-activations in h: the float32 kernel where there is one on the CPU,
  // else LibTorch's operations.
  void activate_layer(LayerViews& b);
  // z̄ of a hidden layer by the CPU's kernel (see chunk()); `last`: the layer under the output weights.
  void z_bar_layer(LayerViews& b, bool last, bool has_h_bar);
  // Model r's block of a chunk buffer or weight (the tensor itself for one model).
  const torch::Tensor& block_of(const torch::Tensor& t, int64_t r) const;
  // dV/dx ((R×)rows×n), then the residual r = dV/dx − S and its adjoint, and r flat per model: for the identity
  // the views' g, r and r_flat; with features Jᵀ applied to the views' g, and buffers of their own.
  struct Residual {
    torch::Tensor g, r, r_flat;
  };
  Residual residual_of(Views& v, const Features::AtRows& at) const;
  void chunk(const Rows& rows, double value_weight, int64_t count, std::vector<torch::Tensor>& grads,
             torch::Tensor& sums);
  // The residuals r = dV/dx − S (in res.r) and V − value (in v.v_bar, where values are given) of the rows after
  // the sweeps, and their sums added (each row's terms times its weight where weights are given).
  void residual_sums(Views& v, Residual& res, const Rows& rows, torch::Tensor& sums);
  // The steps of chunk() after the sweeps (see analytic.cpp).
  void loss_adjoints(Views& v, Residual& res, const Rows& rows, double value_weight, int64_t count,
                     torch::Tensor& sums);
  void reverse_backward_sweep(Views& v, std::vector<torch::Tensor>& grads);
  void reverse_forward_sweep(Views& v, std::vector<torch::Tensor>& grads, bool with_value);
  // Layer l's weight and bias gradient in `grads`, laid out as its weights (no leading R for one model).
  torch::Tensor weight_gradient(const std::vector<torch::Tensor>& grads, size_t layer) const;
  torch::Tensor bias_gradient(const std::vector<torch::Tensor>& grads, size_t layer) const;
  // Adds each model's sum of squares of `flat` (R × k) to sums[r][column].
  void add_sse(Views& v, const torch::Tensor& flat, torch::Tensor& sums, int64_t column);
  // Adds each model's sum of `terms` ((R ×) anything, R leading) to sums[r][column].
  void add_model_sums(const torch::Tensor& terms, torch::Tensor& sums, int64_t column) const;
  // Matrix products of one model (2-D) or of all (3-D; a 2-D operand shared by all): out = a b, acc += a b,
  // out = a W_lᵀ + b_l, and acc += the sum over the rows of m (R × rows × k into R × k, or rows × k into k).
  void product_out(const torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b) const;
  void add_product(const torch::Tensor& acc, const torch::Tensor& a, const torch::Tensor& b) const;
  void affine_out(const torch::Tensor& out, size_t layer, const torch::Tensor& a) const;
  void add_row_sums(const Views& v, const torch::Tensor& acc, const torch::Tensor& m) const;

  config::Activation activation_;
  GradientLoss gradient_loss_;
  Features features_;
  int64_t chunk_rows_;
  int64_t ensemble_ = 1;
  // Per layer, the last being the output layer: weights R × out × in, their transposes, biases R × 1 × out (for
  // one model out × in, in × out and out).
  std::vector<torch::Tensor> weights_, weights_t_, biases_;
  std::vector<torch::Tensor> bias_rows_;  // biases R × out
  bool per_model_ = false;                // an ensemble's products one model at a time (on the CPU)
  bool batch_on_cpu_ = false;
  bool cpu_kernels_ = false;        // element-wise work by model/kernels.h (on the CPU)
  bool kernel_activation_ = false;  // ... the activation's too (float32, and a kernel for it)
  kernels::Activation kernel_activation_kind_ = kernels::Activation::relu;
  // Each model's view of a batched tensor (R × a × b, or R × a), kept by (data, shape, strides) so that a step
  // makes no new views; and model r's part of a matrix operand (its view, or the operand itself where a 2-D one
  // is shared by all models).
  const std::vector<torch::Tensor>& models_of(const torch::Tensor& t) const;
  const torch::Tensor& model_part(const torch::Tensor& t, int64_t r) const;
  mutable std::map<std::array<int64_t, 6>, std::vector<torch::Tensor>> model_views_;
  std::vector<int64_t> widths_;  // of the hidden layers
  int64_t input_dim_ = 0;
  torch::Tensor buffers_, ones_;
  Views cached_[2];
  Views* staged_ = nullptr;  // forward()'s views, for reverse()
};

}  // namespace gradfit::model
