#include "model/analytic_frames.h"

#include <algorithm>
#include <utility>

namespace gradfit::model {

// A chunk's frames: their descriptors (the neighbours and the terms' slopes), the atoms' descriptor values in the
// model's dtype, each element's atoms, and the data (float64).
struct FramesAnalyticLoss::Chunk {
  std::vector<descriptor::FrameDescriptor> descriptors;
  std::vector<int64_t> first_atom;       // per frame, and the atoms' count at the end
  torch::Tensor phi;                     // atoms × w
  std::vector<torch::Tensor> atoms_of;   // per element, its atoms' indices in the chunk (int64)
  std::vector<torch::Tensor> frames_of;  // per element, the frame of each of its atoms (int64)
  std::vector<torch::Tensor> inputs;     // per element, its atoms' rows of phi
  torch::Tensor grad;                    // S, atoms × 3 (float64, CPU)
  torch::Tensor values, atoms;           // per frame: E_f (with a value term) and a_f (float64, CPU)
  int64_t frames() const { return static_cast<int64_t>(descriptors.size()); }
  int64_t total_atoms() const { return first_atom.back(); }
};

FramesAnalyticLoss::FramesAnalyticLoss(config::Activation activation, const std::vector<torch::Tensor>& params,
                                       const NetworkShape& shape, const config::AtomCenteredSpec& descriptor,
                                       std::vector<int64_t> elements, int64_t chunk_atoms, int64_t largest_frame)
    : descriptor_(descriptor),
      elements_(std::move(elements)),
      chunk_atoms_(std::max(chunk_atoms, largest_frame)),
      parts_(shape) {
  TORCH_CHECK(chunk_atoms > 0, "chunk_atoms must be positive");
  const size_t networks = elements_.size();
  TORCH_CHECK(shape.widths.size() == networks, "FramesAnalyticLoss: the shape of ", networks, " networks expected");
  width_ = descriptor::FrameDescriptor::width_of(descriptor_, static_cast<int64_t>(networks));
  TORCH_CHECK(params.size() == parts_.tensors(), "FramesAnalyticLoss: ", parts_.tensors(), " parameters expected");
  const int64_t models = params.front().size(0);
  for (int64_t m = 0; m < models; ++m) {
    std::vector<AnalyticLoss> networks_of_model;
    for (size_t e = 0; e < networks; ++e) {
      const auto own = parts_.of(params, m, e);  // model m's parameters of network e, 1 × shape
      networks_of_model.emplace_back(activation, own, chunk_atoms_);
    }
    models_.push_back(std::move(networks_of_model));
  }
}

std::vector<std::pair<size_t, size_t>> FramesAnalyticLoss::chunk_bounds(const std::vector<FrameView>& frames) const {
  std::vector<std::pair<size_t, size_t>> bounds;
  int64_t atoms = 0;
  for (size_t f = 0; f < frames.size(); ++f) {
    if (bounds.empty() || atoms + frames[f].atoms > chunk_atoms_) {
      bounds.emplace_back(f, f);
      atoms = 0;
    }
    bounds.back().second = f + 1;
    atoms += frames[f].atoms;
  }
  return bounds;
}

FramesAnalyticLoss::Chunk FramesAnalyticLoss::make_chunk(const std::vector<FrameView>& frames, size_t first,
                                                         size_t last, bool with_value) const {
  Chunk c;
  c.first_atom.push_back(0);
  for (size_t f = first; f < last; ++f) c.first_atom.push_back(c.first_atom.back() + frames[f].atoms);
  const int64_t atoms = c.total_atoms(), count = static_cast<int64_t>(last - first);
  auto phi = torch::empty({atoms, width_}, torch::kFloat64);
  c.grad = torch::empty({atoms, 3}, torch::kFloat64);
  c.atoms = torch::empty({count}, torch::kFloat64);
  if (with_value) c.values = torch::empty({count}, torch::kFloat64);
  std::vector<std::vector<int64_t>> atoms_of(elements_.size()), frames_of(elements_.size());
  for (size_t f = first; f < last; ++f) {
    const FrameView& frame = frames[f];
    const auto k = static_cast<int64_t>(f - first), at = c.first_atom[static_cast<size_t>(k)];
    const std::vector<int64_t> numbers(frame.numbers, frame.numbers + frame.atoms);
    c.descriptors.emplace_back(descriptor_, elements_, numbers, frame.positions, *frame.cell);
    const auto values = c.descriptors.back().values();
    std::copy(values.begin(), values.end(), phi.data_ptr<double>() + at * width_);
    std::copy(frame.grad, frame.grad + 3 * frame.atoms, c.grad.data_ptr<double>() + 3 * at);
    c.atoms[k] = static_cast<double>(frame.atoms);
    if (with_value) c.values[k] = frame.value;
    for (int64_t a = 0; a < frame.atoms; ++a) {
      const auto e =
          static_cast<size_t>(std::lower_bound(elements_.begin(), elements_.end(), numbers[a]) - elements_.begin());
      atoms_of[e].push_back(at + a);
      frames_of[e].push_back(k);
    }
  }
  c.phi = phi.to(options_);
  for (size_t e = 0; e < elements_.size(); ++e) {
    c.atoms_of.push_back(torch::tensor(atoms_of[e], torch::kInt64).to(options_.device()));
    c.frames_of.push_back(torch::tensor(frames_of[e], torch::kInt64).to(options_.device()));
    c.inputs.push_back(c.phi.index_select(0, c.atoms_of.back()));
  }
  return c;
}

FramesAnalyticLoss::Pass FramesAnalyticLoss::forward(int64_t model, const Chunk& c) {
  const bool with_value = c.values.defined();
  auto dv_dphi = torch::zeros({c.total_atoms(), width_}, options_);
  Pass pass;
  if (with_value) pass.v = torch::zeros({c.frames()}, options_);
  for (size_t e = 0; e < elements_.size(); ++e) {
    const int64_t rows = c.atoms_of[e].size(0);
    if (rows == 0) {
      pass.stages.emplace_back();
      continue;
    }
    pass.stages.push_back(models_[static_cast<size_t>(model)][e].forward(c.inputs[e], with_value));
    const auto& stage = pass.stages.back();
    dv_dphi.index_copy_(0, c.atoms_of[e], stage.g.view({rows, width_}));
    if (with_value) pass.v.index_add_(0, c.frames_of[e], stage.v.view({rows}));
  }
  const auto g = dv_dphi.to(torch::kCPU, torch::kFloat64).contiguous();
  pass.r = torch::empty({c.total_atoms(), 3}, torch::kFloat64);
  pass.virials = torch::empty({c.frames(), 9}, torch::kFloat64);
  for (int64_t f = 0; f < c.frames(); ++f) {
    const int64_t at = c.first_atom[static_cast<size_t>(f)];
    const auto dv_dx = c.descriptors[static_cast<size_t>(f)].transpose_times(g.data_ptr<double>() + at * width_);
    std::copy(dv_dx.positions.begin(), dv_dx.positions.end(), pass.r.data_ptr<double>() + 3 * at);
    std::copy(dv_dx.virial.begin(), dv_dx.virial.end(), pass.virials.data_ptr<double>() + 9 * f);
  }
  if (with_value) pass.v = pass.v.to(torch::kCPU, torch::kFloat64);
  return pass;
}

void FramesAnalyticLoss::residual_sums(Pass& pass, const Chunk& c, const torch::Tensor& sums) const {
  pass.r.sub_(c.grad);
  const auto host = torch::zeros({3}, torch::kFloat64);
  const auto flat = pass.r.view({-1});
  host[0] = at::dot(flat, flat);
  if (gradient_loss_.kind == config::Loss::huber) host[2] = huber_terms(flat, gradient_loss_.huber_delta).sum();
  if (c.values.defined()) {
    pass.v.sub_(c.values).div_(c.atoms);  // the energy error per atom
    host[1] = at::dot(pass.v, pass.v);
  }
  sums.add_(host.to(sums.options()));
}

// ∂loss/∂(dV/dx) in pass.r, ∂loss/∂V in pass.v.
void FramesAnalyticLoss::adjoints(Pass& pass, const Chunk& c, double value_weight, int64_t count, double n) const {
  const double frames = static_cast<double>(count);
  if (gradient_loss_.kind == config::Loss::huber)
    pass.r.clamp_(-gradient_loss_.huber_delta, gradient_loss_.huber_delta).mul_(1.0 / (frames * n));
  else
    pass.r.mul_(2.0 / (frames * n));
  if (c.values.defined()) pass.v.mul_(2.0 * value_weight / frames).div_(c.atoms);  // ∂/∂V of w Σ ((V − E)/a)² / F
}

void FramesAnalyticLoss::reverse(int64_t model, const Chunk& c, Pass& pass, std::vector<torch::Tensor>& grads) {
  auto rho = torch::empty({c.total_atoms(), width_}, torch::kFloat64);  // ∂loss/∂G
  for (int64_t f = 0; f < c.frames(); ++f) {
    const int64_t at = c.first_atom[static_cast<size_t>(f)];
    const auto j_r = c.descriptors[static_cast<size_t>(f)].times(pass.r.data_ptr<double>() + 3 * at);
    std::copy(j_r.begin(), j_r.end(), rho.data_ptr<double>() + at * width_);
  }
  rho = rho.to(options_);
  const auto v_bar = c.values.defined() ? pass.v.to(options_) : torch::Tensor();
  for (size_t e = 0; e < elements_.size(); ++e) {
    const int64_t rows = c.atoms_of[e].size(0);
    if (rows == 0) continue;
    auto& stage = pass.stages[e];
    auto g_bar = stage.g_bar.view({rows, width_});
    at::index_select_out(g_bar, rho, 0, c.atoms_of[e]);
    if (v_bar.defined()) {
      auto v_bar_rows = stage.v_bar.view({rows});
      at::index_select_out(v_bar_rows, v_bar, 0, c.frames_of[e]);
    }
    auto own = parts_.of(grads, model, e);
    models_[static_cast<size_t>(model)][e].reverse(own, v_bar.defined());
  }
}

void FramesAnalyticLoss::chunk(const Chunk& c, double value_weight, int64_t count, double n,
                               std::vector<torch::Tensor>* grads, torch::Tensor& sums) {
  for (int64_t m = 0; m < static_cast<int64_t>(models_.size()); ++m) {
    Pass pass = forward(m, c);
    residual_sums(pass, c, sums.select(0, m));
    if (grads == nullptr) continue;
    adjoints(pass, c, value_weight, count, n);
    reverse(m, c, pass, *grads);
  }
}

void FramesAnalyticLoss::accumulate(const std::vector<FrameView>& frames, double value_weight, int64_t count, double n,
                                    std::vector<torch::Tensor>& grads, torch::Tensor& sums) {
  torch::NoGradGuard no_grad;
  const bool with_value = value_weight > 0;
  for (const auto& [first, last] : chunk_bounds(frames))
    chunk(make_chunk(frames, first, last, with_value), value_weight, count, n, &grads, sums);
}

void FramesAnalyticLoss::evaluate(const std::vector<FrameView>& frames, double value_weight, torch::Tensor& sums) {
  torch::NoGradGuard no_grad;
  const bool with_value = value_weight > 0;
  for (const auto& [first, last] : chunk_bounds(frames))
    chunk(make_chunk(frames, first, last, with_value), value_weight, 1, 1.0, nullptr, sums);
}

FramesAnalyticLoss::Predictions FramesAnalyticLoss::predict(const std::vector<FrameView>& frames) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> values, grads, virials;
  for (const auto& [first, last] : chunk_bounds(frames)) {
    const Chunk c = make_chunk(frames, first, last, /*with_value=*/true);
    Pass pass = forward(0, c);
    values.push_back(pass.v);
    grads.push_back(pass.r);
    virials.push_back(pass.virials);
  }
  if (values.empty())
    return {torch::empty({0}, torch::kFloat64), torch::empty({0, 3}, torch::kFloat64),
            torch::empty({0, 9}, torch::kFloat64)};
  return {torch::cat(values), torch::cat(grads), torch::cat(virials)};
}

}  // namespace gradfit::model
