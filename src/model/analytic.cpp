#include "model/analytic.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "model/activation.h"
#include "model/kernels.h"

namespace gradfit::model {
namespace {

constexpr int64_t kCpuChunkBytes = int64_t{8} << 20;

template <typename T>
T* data_of(const torch::Tensor& t) {
  TORCH_INTERNAL_ASSERT(t.is_contiguous(), "kernel operand not contiguous");
  return t.data_ptr<T>();
}

// Rows of `cols` elements per task of a kernel split over LibTorch's intra-op threads: at least ~64K elements
// (cols = 1: elements).
int64_t grain_rows(int64_t cols) {
  return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(cols, 1));
}

int64_t widest_of(int64_t input_dim, const std::vector<int64_t>& widths) {
  return std::max(input_dim, widths.empty() ? int64_t{0} : *std::max_element(widths.begin(), widths.end()));
}

// Blocks of the buffers, one per model and quantity, and the gap after each model's block in an ensemble. The
// gap keeps the models' blocks apart for LibTorch's element-wise loops, so that each model's elements go through
// the same loop (vectorised body and scalar tail alike) as those of a model trained alone: same rounding.
int64_t buffer_blocks(const std::vector<int64_t>& widths) {
  return static_cast<int64_t>(6 * widths.size()) + 3 + 4;
}
constexpr int64_t kGap = 16;

}  // namespace

// Six per hidden unit, three scratch rows of the widest layer, dV/dx and its residual (n each), V and its adjoint.
int64_t buffer_elements_per_row(int64_t input_dim, const std::vector<int64_t>& widths) {
  int64_t per_row = 2 * input_dim + 2 + 3 * widest_of(input_dim, widths);
  for (const int64_t w : widths) per_row += 6 * w;
  return per_row;
}

int64_t default_chunk_rows(int64_t input_dim, const std::vector<int64_t>& widths, torch::ScalarType dtype,
                           torch::Device device) {
  const int64_t per_row = buffer_elements_per_row(input_dim, widths) * static_cast<int64_t>(c10::elementSize(dtype));
  const int64_t budget = device.is_cuda() ? (int64_t{1} << 30) : kCpuChunkBytes;
  int64_t rows = 1;
  while (rows * 2 * per_row <= budget) rows *= 2;
  return std::max<int64_t>(rows, 64);
}

NetworkParts::NetworkParts(const NetworkShape& shape) : first{0} {
  for (const auto& widths : shape.widths) first.push_back(first.back() + 2 * (widths.size() + 1));
}

std::vector<torch::Tensor> NetworkParts::of(const std::vector<torch::Tensor>& tensors, int64_t model,
                                            size_t network) const {
  std::vector<torch::Tensor> own;
  for (size_t i = first[network]; i < first[network + 1]; ++i) own.push_back(tensors[i].narrow(0, model, 1));
  return own;
}

std::vector<torch::Tensor> ensemble_views(const torch::Tensor& flat, int64_t input_dim,
                                          const std::vector<int64_t>& widths, int64_t networks) {
  return ensemble_views(flat, NetworkShape{networks, input_dim,
                                           std::vector<std::vector<int64_t>>(static_cast<size_t>(networks), widths)});
}

std::vector<torch::Tensor> ensemble_views(const torch::Tensor& flat, const NetworkShape& shape) {
  std::vector<torch::Tensor> views;
  const int64_t models = flat.size(0);
  int64_t offset = 0;
  const auto take = [&](std::vector<int64_t> shape) {
    int64_t numel = 1;
    for (const int64_t d : shape) numel *= d;
    shape.insert(shape.begin(), models);
    views.push_back(flat.narrow(1, offset, numel).view(shape));
    offset += numel;
  };
  for (const auto& widths : shape.widths) {
    int64_t in = shape.inputs;
    for (const int64_t w : widths) {
      take({w, in});
      take({w});
      in = w;
    }
    take({1, in});
    take({1});
  }
  TORCH_CHECK(offset == flat.size(1), "ensemble_views: ", flat.size(1), " parameters per model, expected ", offset);
  return views;
}

AnalyticLoss::AnalyticLoss(Mlp model, int64_t chunk_rows)
    : AnalyticLoss(
          model->activation(),
          [&] {
            std::vector<torch::Tensor> params;
            for (const auto& p : model->parameters()) params.push_back(p.detach().unsqueeze(0));
            return params;
          }(),
          chunk_rows) {
  features_ = model->features();
}

AnalyticLoss::AnalyticLoss(config::Activation activation, const std::vector<torch::Tensor>& params, int64_t chunk_rows)
    : activation_(activation), chunk_rows_(chunk_rows) {
  TORCH_CHECK(chunk_rows_ > 0, "chunk_rows must be positive");
  TORCH_CHECK(params.size() >= 2 && params.size() % 2 == 0, "AnalyticLoss: expected weights and biases");
  ensemble_ = params.front().size(0);
  const size_t depth = params.size() / 2;
  for (size_t l = 0; l < depth; ++l) {
    // One model keeps plain matrices (out × in, bias out), so its products are single matrix products.
    const auto w = ensemble_ == 1 ? params[2 * l].squeeze(0) : params[2 * l];
    weights_.push_back(w);
    weights_t_.push_back(w.transpose(-2, -1));
    biases_.push_back(ensemble_ == 1 ? params[2 * l + 1].squeeze(0) : params[2 * l + 1].unsqueeze(1));
    bias_rows_.push_back(params[2 * l + 1]);
    if (l + 1 < depth) widths_.push_back(w.size(-2));
  }
  input_dim_ = weights_.front().size(-1);
}

namespace {
// A rows × cols block for one model, or models × rows × cols with the models `stride` elements apart.
torch::Tensor rows_of(const torch::Tensor& buffer, int64_t models, int64_t stride, int64_t rows, int64_t cols) {
  if (models == 1) return buffer.narrow(0, 0, rows * cols).view({rows, cols});
  return buffer.as_strided({models, rows, cols}, {stride, cols, 1}, buffer.storage_offset());
}
torch::Tensor transposed(const torch::Tensor& m) {
  return m.transpose(-2, -1);
}
}  // namespace

const std::vector<torch::Tensor>& AnalyticLoss::models_of(const torch::Tensor& t) const {
  const bool matrices = t.dim() == 3;
  const std::array<int64_t, 6> key{reinterpret_cast<int64_t>(t.data_ptr()),
                                   t.size(1),
                                   matrices ? t.size(2) : -1,
                                   t.stride(0),
                                   t.stride(1),
                                   matrices ? t.stride(2) : -1};
  auto it = model_views_.find(key);
  if (it == model_views_.end()) {
    std::vector<torch::Tensor> views;
    for (int64_t r = 0; r < ensemble_; ++r) views.push_back(t.select(0, r));
    it = model_views_.emplace(key, std::move(views)).first;
  }
  return it->second;
}

const torch::Tensor& AnalyticLoss::model_part(const torch::Tensor& t, int64_t r) const {
  return t.dim() == 3 ? models_of(t)[r] : t;
}

// The matrix products: one model's directly; an ensemble's batched over the models on a GPU, and on the CPU one
// model at a time with the very calls a model alone makes, so that each model's products round alike.
void AnalyticLoss::product_out(const torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b) const {
  if (out.dim() == 2) {
    at::mm_out(const_cast<torch::Tensor&>(out), a, b);
  } else if (!per_model_) {
    at::bmm_out(const_cast<torch::Tensor&>(out), a, b);
  } else {
    const auto& outs = models_of(out);
    for (int64_t r = 0; r < ensemble_; ++r)
      at::mm_out(const_cast<torch::Tensor&>(outs[r]), model_part(a, r), model_part(b, r));
  }
}
void AnalyticLoss::add_product(const torch::Tensor& acc, const torch::Tensor& a, const torch::Tensor& b) const {
  if (acc.dim() == 2) {
    acc.addmm_(a, b);
  } else if (!per_model_) {
    acc.baddbmm_(a, b);
  } else {
    const auto& accs = models_of(acc);
    for (int64_t r = 0; r < ensemble_; ++r) accs[r].addmm_(model_part(a, r), model_part(b, r));
  }
}
void AnalyticLoss::affine_out(const torch::Tensor& out, size_t layer, const torch::Tensor& a) const {
  if (out.dim() == 2) {
    at::addmm_out(const_cast<torch::Tensor&>(out), biases_[layer], a, weights_t_[layer]);
  } else if (!per_model_) {
    at::baddbmm_out(const_cast<torch::Tensor&>(out), biases_[layer], a, weights_t_[layer]);
  } else {
    const auto &outs = models_of(out), &bias = models_of(bias_rows_[layer]), &w_t = models_of(weights_t_[layer]);
    for (int64_t r = 0; r < ensemble_; ++r)
      at::addmm_out(const_cast<torch::Tensor&>(outs[r]), bias[r], model_part(a, r), w_t[r]);
  }
}
void AnalyticLoss::add_row_sums(const Views& v, const torch::Tensor& acc, const torch::Tensor& m) const {
  if (acc.dim() == 1) {
    acc.addmv_(transposed(m), v.ones);  // acc: k, m: rows × k
  } else if (!per_model_) {
    acc.unsqueeze(2).baddbmm_(transposed(m), v.ones_col);  // acc: R × k, m: R × rows × k
  } else {
    const auto &accs = models_of(acc), &ms = models_of(m);
    for (int64_t r = 0; r < ensemble_; ++r) accs[r].addmv_(transposed(ms[r]), v.ones);
  }
}

AnalyticLoss::Views& AnalyticLoss::views(const torch::Tensor& like, int64_t rows) {
  const auto options = like.options().requires_grad(false);
  const int64_t models = ensemble_;
  const int64_t gap = models == 1 ? 0 : kGap;
  if (!buffers_.defined() || buffers_.scalar_type() != options.dtype() || buffers_.device() != options.device()) {
    // One allocation: per hidden layer six blocks of R × chunk_rows × width, then three of the widest, then the
    // n-wide ones (each model's part of a block followed by a gap in an ensemble).
    const int64_t elements = chunk_rows_ * buffer_elements_per_row(input_dim_, widths_) + gap * buffer_blocks(widths_);
    buffers_ = torch::empty({models * elements + models}, options);
    ones_ = torch::ones({chunk_rows_}, options);
    per_model_ = models > 1 && options.device().is_cpu() && !batch_on_cpu_;
    cpu_kernels_ = options.device().is_cpu();
    const auto kernel = activation_of(activation_).kernel();
    kernel_activation_ = cpu_kernels_ && options.dtype() == torch::kFloat32 && kernel.has_value();
    if (kernel_activation_) kernel_activation_kind_ = *kernel;
    cached_[0].rows = cached_[1].rows = -1;
  }
  Views& slot = rows == chunk_rows_ ? cached_[0] : cached_[1];
  if (slot.rows == rows) return slot;
  // Carve the buffer for `rows` rows (each block keeps its chunk_rows-sized place).
  int64_t offset = 0;
  const auto block = [&](int64_t cols) {
    const int64_t stride = chunk_rows_ * cols + gap;
    auto t = buffers_.narrow(0, offset, models * stride);
    offset += models * stride;
    return rows_of(t, models, stride, rows, cols);
  };
  const int64_t n = input_dim_;
  const int64_t widest = widest_of(n, widths_);
  slot = Views{};
  slot.rows = rows;
  for (const int64_t w : widths_) {
    LayerViews v;
    for (auto* t : {&v.h, &v.s1, &v.s2, &v.a, &v.d, &v.d_bar}) *t = block(w);
    slot.layers.push_back(std::move(v));
  }
  const int64_t scratch_stride = chunk_rows_ * widest + gap;
  const int64_t scratch_size = models * scratch_stride;
  const auto scratch_z = buffers_.narrow(0, offset, scratch_size);
  const auto scratch_0 = buffers_.narrow(0, offset + scratch_size, scratch_size);
  const auto scratch_1 = buffers_.narrow(0, offset + 2 * scratch_size, scratch_size);
  offset += 3 * scratch_size;
  for (size_t l = 0; l < slot.layers.size(); ++l) {
    const int64_t w = widths_[l];
    slot.layers[l].z_bar = rows_of(scratch_z, models, scratch_stride, rows, w);
    slot.layers[l].scratch = rows_of(l % 2 ? scratch_1 : scratch_0, models, scratch_stride, rows, w);
  }
  slot.g = block(n);
  slot.r = block(n);
  slot.r_flat = models == 1 ? slot.r.view({-1}) : slot.r.flatten(1);
  slot.v = block(1);
  slot.v_bar = block(1);
  slot.v_bar_flat = models == 1 ? slot.v_bar.view({-1}) : slot.v_bar.flatten(1);
  slot.sse = buffers_.narrow(0, offset, models).view({models, 1, 1});
  slot.ones = ones_.narrow(0, 0, rows);
  slot.ones_col = slot.ones.view({1, rows, 1}).expand({models, rows, 1});
  return slot;
}

void AnalyticLoss::add_model_sums(const torch::Tensor& terms, torch::Tensor& sums, int64_t column) const {
  if (ensemble_ == 1) {
    sums.select(1, column).add_(terms.sum());
    return;
  }
  for (int64_t r = 0; r < ensemble_; ++r) sums.select(0, r).select(0, column).add_(terms.select(0, r).sum());
}

void AnalyticLoss::add_sse(Views& v, const torch::Tensor& flat, torch::Tensor& sums, int64_t column) {
  if (ensemble_ == 1) {
    sums.select(1, column).add_(at::dot(flat, flat));
    return;
  }
  if (per_model_) {  // as each model alone sums them
    const auto& rows = models_of(flat);
    for (int64_t r = 0; r < ensemble_; ++r) sums.select(0, r).select(0, column).add_(at::dot(rows[r], rows[r]));
    return;
  }
  at::bmm_out(v.sse, flat.unsqueeze(1), flat.unsqueeze(2));
  sums.select(1, column).add_(v.sse.view({-1}));
}

const torch::Tensor& AnalyticLoss::block_of(const torch::Tensor& t, int64_t r) const {
  return ensemble_ == 1 ? t : models_of(t)[r];
}

void AnalyticLoss::activate_layer(LayerViews& b) {
  if (!kernel_activation_) {
    // σ'' for softplus too where no z̄ kernel computes it from σ'.
    activation_of(activation_).activate(b.h, b.s1, b.s2, b.z_bar, /*with_curvature=*/!cpu_kernels_);
    return;
  }
  for (int64_t r = 0; r < ensemble_; ++r) {
    float* h = data_of<float>(block_of(b.h, r));
    float* s1 = data_of<float>(block_of(b.s1, r));
    float* s2 = data_of<float>(block_of(b.s2, r));
    at::parallel_for(0, block_of(b.h, r).numel(), grain_rows(1), [&](int64_t begin, int64_t end) {
      kernels::activate(kernel_activation_kind_, h + begin, s1 + begin, s2 + begin, end - begin);
    });
  }
}

void AnalyticLoss::z_bar_layer(LayerViews& b, bool last, bool has_h_bar) {
  // σ'' is stored but for softplus, whose z̄ kernel computes it from σ' (the sigmoid).
  const bool stored = activation_of(activation_).stores_curvature();
  AT_DISPATCH_FLOATING_TYPES(b.z_bar.scalar_type(), "z_bar", [&] {
    for (int64_t r = 0; r < ensemble_; ++r) {
      const auto& out = block_of(b.z_bar, r);
      const int64_t rows = out.size(0), cols = out.size(1);
      // ∂V/∂h of the layer, or for the last one the output weights (1 × width), the same row for every row.
      const scalar_t* a = data_of<scalar_t>(last ? block_of(weights_.back(), r) : block_of(b.a, r));
      const int64_t a_stride = last ? 0 : cols;
      const scalar_t* d_bar = data_of<scalar_t>(block_of(b.d_bar, r));
      const scalar_t* s1 = data_of<scalar_t>(block_of(b.s1, r));
      const scalar_t* s2 = stored ? data_of<scalar_t>(block_of(b.s2, r)) : nullptr;
      const scalar_t* h_bar = has_h_bar ? data_of<scalar_t>(block_of(b.scratch, r)) : nullptr;
      scalar_t* z_bar = data_of<scalar_t>(out);
      at::parallel_for(0, rows, grain_rows(cols), [&](int64_t begin, int64_t end) {
        const int64_t o = begin * cols;
        kernels::z_bar(d_bar + o, a + begin * a_stride, a_stride, s1 + o, s2 ? s2 + o : nullptr,
                       h_bar ? h_bar + o : nullptr, z_bar + o, end - begin, cols);
      });
    }
  });
}

void AnalyticLoss::sweeps(Views& v, const torch::Tensor& x, bool with_value) {
  const size_t hidden = v.layers.size();
  v.x = ensemble_ == 1 || per_model_ ? x : x.unsqueeze(0).expand({ensemble_, x.size(0), x.size(1)});
  // Forward: h_l = σ(h_{l-1} W_lᵀ + b_l), with σ' and σ'' kept.
  torch::Tensor h_prev = v.x;
  for (size_t l = 0; l < hidden; ++l) {
    auto& b = v.layers[l];
    affine_out(b.h, l, h_prev);
    activate_layer(b);
    h_prev = b.h;
  }
  if (with_value) affine_out(v.v, hidden, h_prev);
  // Backward: a_L = w (the output weights), d_l = a_l ⊙ σ'_l, a_{l-1} = d_l W_l; dV/dx = a_0.
  for (size_t l = hidden; l-- > 0;) {
    auto& b = v.layers[l];
    at::mul_out(b.d, b.s1, l + 1 == hidden ? weights_[hidden] : b.a);
    product_out(l == 0 ? v.g : v.layers[l - 1].a, b.d, weights_[l]);
  }
}

namespace {
// sums as R × 2 (a plain 2 when R = 1).
torch::Tensor sums_of(const torch::Tensor& sums) {
  return sums.dim() == 2 ? sums : sums.view({1, -1});
}
}  // namespace

AnalyticLoss::Rows AnalyticLoss::Rows::narrow(int64_t first, int64_t rows) const {
  const auto part = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, first, rows) : t; };
  return {part(x), part(grad_samples), part(values), part(weights)};
}

AnalyticLoss::Residual AnalyticLoss::residual_of(Views& v, const Features::AtRows& at) const {
  if (features_.is_identity()) return {v.g, v.r, v.r_flat};
  Residual res;
  res.g = features_.transpose_times(at, v.g);
  res.r = torch::empty_like(res.g);
  res.r_flat = ensemble_ == 1 ? res.r.view({-1}) : res.r.flatten(1);
  return res;
}

void AnalyticLoss::chunk(const Rows& rows, double value_weight, int64_t count, std::vector<torch::Tensor>& grads,
                         torch::Tensor& sums) {
  const Features::AtRows at = features_.at(rows.x);  // φ (x itself for the identity) and J's factors
  Views& v = views(at.phi, rows.x.size(0));
  if (model_views_.size() > 1024) model_views_.clear();  // views of tensors that are gone
  const bool with_value = rows.values.defined();
  sweeps(v, at.phi, with_value);
  Residual res = residual_of(v, at);
  loss_adjoints(v, res, rows, value_weight, count, sums);
  if (!features_.is_identity()) v.r.copy_(features_.times(at, res.r));  // ∂loss/∂φ = J ∂loss/∂(dV/dx)
  reverse_backward_sweep(v, grads);
  reverse_forward_sweep(v, grads, with_value);
}

// The gradients laid out as the weights: out × in and out for one model, R × out × in and R × out for several.
torch::Tensor AnalyticLoss::weight_gradient(const std::vector<torch::Tensor>& grads, size_t layer) const {
  const auto& g = grads[2 * layer];
  return ensemble_ == 1 && g.dim() == 3 ? g.squeeze(0) : g;
}
torch::Tensor AnalyticLoss::bias_gradient(const std::vector<torch::Tensor>& grads, size_t layer) const {
  const auto& g = grads[2 * layer + 1];
  return ensemble_ == 1 && g.dim() == 2 ? g.squeeze(0) : g;
}

void AnalyticLoss::residual_sums(Views& v, Residual& res, const Rows& rows, torch::Tensor& sums) {
  at::sub_out(res.r, res.g, rows.grad_samples);
  if (rows.values.defined()) at::sub_out(v.v_bar, v.v, rows.values.view({-1, 1}));
  const bool huber = gradient_loss_.kind == config::Loss::huber;
  const double delta = gradient_loss_.huber_delta;
  if (!rows.weights.defined()) {
    add_sse(v, res.r_flat, sums, 0);
    if (huber) add_model_sums(huber_terms(res.r_flat, delta), sums, 2);
    if (rows.values.defined()) add_sse(v, v.v_bar_flat, sums, 1);
    return;
  }
  const auto w = rows.weights.view({-1, 1});  // over the components (and the models)
  add_model_sums(res.r.square() * w, sums, 0);
  if (huber) add_model_sums(huber_terms(res.r, delta) * w, sums, 2);
  if (rows.values.defined()) add_model_sums(v.v_bar.square() * w, sums, 1);
}

// The loss sums, and the adjoints of dV/dx (in res.r) and of V (in v.v_bar, where values are given).
void AnalyticLoss::loss_adjoints(Views& v, Residual& res, const Rows& rows, double value_weight, int64_t count,
                                 torch::Tensor& sums) {
  const auto n = static_cast<double>(rows.grad_samples.size(1));
  residual_sums(v, res, rows, sums);
  if (gradient_loss_.kind == config::Loss::huber)  // ∂loss/∂(dV/dx) = clamp(r, −δ, δ) / (count n)
    res.r.clamp_(-gradient_loss_.huber_delta, gradient_loss_.huber_delta).mul_(1.0 / (static_cast<double>(count) * n));
  else
    res.r.mul_(2.0 / (static_cast<double>(count) * n));  // ∂loss/∂(dV/dx)
  if (rows.weights.defined()) res.r.mul_(rows.weights.view({-1, 1}));
  if (!rows.values.defined()) return;
  v.v_bar.mul_(2.0 * value_weight / static_cast<double>(count));  // ∂loss/∂V
  if (rows.weights.defined()) v.v_bar.mul_(rows.weights.view({-1, 1}));
}

// Reverse of the backward sweep, first layer to last: a_{l-1} = d_l W_l gives
//   W̄_l += d_lᵀ ā_{l-1},   d̄_l = ā_{l-1} W_lᵀ,   ā_l = d̄_l ⊙ σ'_l,
// and the last ā (that of the output weights broadcast over the rows) sums into the output weights' gradient.
void AnalyticLoss::reverse_backward_sweep(Views& v, std::vector<torch::Tensor>& grads) {
  const size_t hidden = v.layers.size();
  torch::Tensor a_bar = v.r;
  for (size_t l = 0; l < hidden; ++l) {
    auto& b = v.layers[l];
    add_product(weight_gradient(grads, l), transposed(b.d), a_bar);
    product_out(b.d_bar, a_bar, weights_t_[l]);
    at::mul_out(b.scratch, b.d_bar, b.s1);
    a_bar = b.scratch;
  }
  add_row_sums(v, weight_gradient(grads, hidden).select(-2, 0), a_bar);  // output weights: w, or R × w
}

// Reverse of the forward sweep, last layer to first, with z̄_l = d̄_l ⊙ a_l ⊙ σ''_l + h̄_l ⊙ σ'_l:
//   W̄_l += z̄_lᵀ h_{l-1},   b̄_l += Σ_rows z̄_l,   h̄_{l-1} = z̄_l W_l   (h̄_l lives in layer l's scratch).
// For ReLU (σ'' = 0) without a value term every z̄ is zero and the sweep is skipped.
void AnalyticLoss::reverse_forward_sweep(Views& v, std::vector<torch::Tensor>& grads, bool with_value) {
  const size_t hidden = v.layers.size();
  const bool curved = !activation_of(activation_).piecewise_linear();
  bool has_h_bar = with_value;
  if (with_value) {
    auto& last = v.layers[hidden - 1];
    product_out(last.scratch, v.v_bar, weights_[hidden]);
    add_product(weight_gradient(grads, hidden), transposed(v.v_bar), last.h);  // 1 × w, or R × 1 × w
    add_row_sums(v, bias_gradient(grads, hidden), v.v_bar);
  }
  if (!curved && !has_h_bar) return;
  for (size_t l = hidden; l-- > 0;) {
    auto& b = v.layers[l];
    if (curved && cpu_kernels_) {
      z_bar_layer(b, l + 1 == hidden, has_h_bar);
    } else if (curved) {
      at::mul_out(b.z_bar, b.d_bar, b.s2);
      b.z_bar.mul_(l + 1 == hidden ? weights_[hidden] : b.a);
      if (has_h_bar) b.z_bar.addcmul_(b.scratch, b.s1);
    } else {
      at::mul_out(b.z_bar, b.scratch, b.s1);
    }
    add_product(weight_gradient(grads, l), transposed(b.z_bar), l == 0 ? v.x : v.layers[l - 1].h);
    add_row_sums(v, bias_gradient(grads, l), b.z_bar);
    if (l > 0) {
      product_out(v.layers[l - 1].scratch, b.z_bar, weights_[l]);
      has_h_bar = true;
    }
  }
}

AnalyticLoss::Stage AnalyticLoss::forward(const torch::Tensor& inputs, bool with_value) {
  TORCH_CHECK(features_.is_identity(), "AnalyticLoss::forward: a network of its inputs (no features)");
  Views& v = views(inputs, inputs.size(0));
  if (model_views_.size() > 1024) model_views_.clear();  // views of tensors that are gone
  sweeps(v, inputs, with_value);
  staged_ = &v;
  return {v.g, v.v, v.r, v.v_bar};
}

void AnalyticLoss::reverse(std::vector<torch::Tensor>& grads, bool with_value) {
  TORCH_CHECK(staged_ != nullptr, "AnalyticLoss::reverse without forward");
  reverse_backward_sweep(*staged_, grads);
  reverse_forward_sweep(*staged_, grads, with_value);
}

void AnalyticLoss::evaluate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                            double value_weight, torch::Tensor& sums, const torch::Tensor& row_weights) {
  torch::NoGradGuard no_grad;
  auto sums_2d = sums_of(sums);
  const Rows all{x, grad_samples, value_weight > 0 && values.defined() ? values : torch::Tensor(), row_weights};
  const int64_t total = x.size(0);
  for (int64_t first = 0; first < total; first += chunk_rows_) {
    const Rows rows = all.narrow(first, std::min(chunk_rows_, total - first));
    const Features::AtRows at = features_.at(rows.x);
    Views& v = views(at.phi, rows.x.size(0));
    sweeps(v, at.phi, rows.values.defined());
    Residual res = residual_of(v, at);
    residual_sums(v, res, rows, sums_2d);
  }
}

void AnalyticLoss::accumulate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                              double value_weight, int64_t count, std::vector<torch::Tensor>& grads,
                              torch::Tensor& sums, const torch::Tensor& row_weights) {
  torch::NoGradGuard no_grad;
  auto sums_2d = sums_of(sums);
  const Rows all{x, grad_samples, value_weight > 0 && values.defined() ? values : torch::Tensor(), row_weights};
  const int64_t total = x.size(0);
  if (total <= chunk_rows_) return chunk(all, value_weight, count, grads, sums_2d);
  for (int64_t first = 0; first < total; first += chunk_rows_)
    chunk(all.narrow(first, std::min(chunk_rows_, total - first)), value_weight, count, grads, sums_2d);
}

}  // namespace gradfit::model
