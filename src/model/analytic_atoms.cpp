#include "model/analytic_atoms.h"

#include <algorithm>

namespace gradfit::model {
namespace {

// sums as R × 3 (a plain 3 when R = 1).
torch::Tensor sums_of(const torch::Tensor& sums) {
  return sums.dim() == 2 ? sums : sums.view({1, -1});
}

std::vector<torch::Tensor> atoms_by_element(const AtomLayout& layout) {
  std::vector<std::vector<int64_t>> atoms(layout.elements.size());
  for (size_t i = 0; i < layout.element_of_atom.size(); ++i)
    atoms[static_cast<size_t>(layout.element_of_atom[i])].push_back(static_cast<int64_t>(i));
  std::vector<torch::Tensor> tables;
  for (const auto& a : atoms) tables.push_back(torch::tensor(a, torch::kInt64));
  return tables;
}

}  // namespace

AtomsAnalyticLoss::AtomsAnalyticLoss(config::Activation activation, const std::vector<torch::Tensor>& params,
                                     const NetworkShape& shape, int64_t chunk_rows, const Features& features)
    : features_(features), chunk_rows_(chunk_rows), parts_(shape) {
  const AtomLayout* layout = features.kind().atom_layout();
  TORCH_CHECK(layout != nullptr, "AtomsAnalyticLoss: features without an atom layout");
  TORCH_CHECK(chunk_rows_ > 0, "chunk_rows must be positive");
  const size_t networks = layout->elements.size();
  TORCH_CHECK(shape.widths.size() == networks, "AtomsAnalyticLoss: the shape of ", networks, " networks expected");
  TORCH_CHECK(params.size() == parts_.tensors(), "AtomsAnalyticLoss: ", parts_.tensors(), " parameters expected");
  width_ = layout->width;
  atoms_ = static_cast<double>(layout->element_of_atom.size());
  atoms_of_element_ = TablesLike(atoms_by_element(*layout));
  const int64_t models = params.front().size(0);
  for (int64_t m = 0; m < models; ++m) {
    std::vector<AnalyticLoss> networks_of_model;
    for (size_t e = 0; e < networks; ++e) {
      const auto own = parts_.of(params, m, e);  // model m's parameters of network e, 1 × shape
      const int64_t atoms = atoms_of_element_.cpu()[e].size(0);
      networks_of_model.emplace_back(activation, own, chunk_rows_ * atoms);
    }
    models_.push_back(std::move(networks_of_model));
  }
}

std::vector<torch::Tensor> AtomsAnalyticLoss::element_inputs(const torch::Tensor& phi) const {
  const int64_t frames = phi.size(0);
  const auto per_atom = phi.view({frames, -1, width_});
  std::vector<torch::Tensor> inputs;
  for (const auto& atoms : atoms_of_element_.like(phi))
    inputs.push_back(per_atom.index_select(1, atoms).view({frames * atoms.size(0), width_}));
  return inputs;
}

AtomsAnalyticLoss::Pass AtomsAnalyticLoss::forward(int64_t model, const Features::AtRows& at,
                                                   const std::vector<torch::Tensor>& inputs, bool with_value) {
  const int64_t frames = at.phi.size(0);
  const auto& atoms_of = atoms_of_element_.like(at.phi);
  auto dv_dphi = torch::empty({frames, at.phi.size(1) / width_, width_}, at.phi.options());
  Pass pass;
  if (with_value) pass.v = torch::zeros({frames}, at.phi.options());
  for (size_t e = 0; e < inputs.size(); ++e) {
    const int64_t atoms = atoms_of[e].size(0);
    pass.stages.push_back(models_[static_cast<size_t>(model)][e].forward(inputs[e], with_value));
    dv_dphi.index_copy_(1, atoms_of[e], pass.stages.back().g.view({frames, atoms, width_}));
    if (with_value) pass.v.add_(pass.stages.back().v.view({frames, atoms}).sum(1));
  }
  pass.r = features_.transpose_times(at, dv_dphi.view({frames, -1}));
  return pass;
}

void AtomsAnalyticLoss::residual_sums(Pass& pass, const Rows& rows, const torch::Tensor& sums) const {
  pass.r.sub_(rows.grad_samples);
  if (rows.values.defined()) pass.v.sub_(rows.values).div_(atoms_);  // the energy error per atom
  const bool huber = gradient_loss_.kind == config::Loss::huber;
  const double delta = gradient_loss_.huber_delta;
  if (!rows.weights.defined()) {
    const auto flat = pass.r.view({-1});
    sums.select(0, 0).add_(at::dot(flat, flat));
    if (huber) sums.select(0, 2).add_(huber_terms(flat, delta).sum());
    if (rows.values.defined()) sums.select(0, 1).add_(at::dot(pass.v, pass.v));
    return;
  }
  const auto w = rows.weights.view({-1, 1});
  sums.select(0, 0).add_((pass.r.square() * w).sum());
  if (huber) sums.select(0, 2).add_((huber_terms(pass.r, delta) * w).sum());
  if (rows.values.defined()) sums.select(0, 1).add_((pass.v.square() * rows.weights).sum());
}

// As AnalyticLoss::loss_adjoints: ∂loss/∂(dV/dx) in pass.r, ∂loss/∂V in pass.v.
void AtomsAnalyticLoss::adjoints(Pass& pass, const Rows& rows, double value_weight, int64_t count) const {
  const double n = static_cast<double>(rows.grad_samples.size(1)), frames = static_cast<double>(count);
  if (gradient_loss_.kind == config::Loss::huber)
    pass.r.clamp_(-gradient_loss_.huber_delta, gradient_loss_.huber_delta).mul_(1.0 / (frames * n));
  else
    pass.r.mul_(2.0 / (frames * n));
  if (rows.weights.defined()) pass.r.mul_(rows.weights.view({-1, 1}));
  if (!rows.values.defined()) return;
  pass.v.mul_(2.0 * value_weight / (frames * atoms_));  // ∂/∂V of value_weight Σ ((V − E)/a)² / frames
  if (rows.weights.defined()) pass.v.mul_(rows.weights);
}

void AtomsAnalyticLoss::reverse(int64_t model, const Features::AtRows& at, Pass& pass,
                                std::vector<torch::Tensor>& grads, bool with_value) {
  const int64_t frames = at.phi.size(0);
  const auto& atoms_of = atoms_of_element_.like(at.phi);
  const auto rho = features_.times(at, pass.r).view({frames, -1, width_});  // ∂loss/∂φ
  for (size_t e = 0; e < pass.stages.size(); ++e) {
    const int64_t atoms = atoms_of[e].size(0);
    auto& stage = pass.stages[e];
    auto g_bar = stage.g_bar.view({frames, atoms, width_});
    at::index_select_out(g_bar, rho, 1, atoms_of[e]);
    if (with_value) stage.v_bar.view({frames, atoms}).copy_(pass.v.view({frames, 1}).expand({frames, atoms}));
    auto own = parts_.of(grads, model, e);
    models_[static_cast<size_t>(model)][e].reverse(own, with_value);
  }
}

void AtomsAnalyticLoss::chunk(const Rows& rows, double value_weight, int64_t count, std::vector<torch::Tensor>* grads,
                              torch::Tensor& sums) {
  const Features::AtRows at = features_.at(rows.x);  // φ and J's factors, shared by the models
  const auto inputs = element_inputs(at.phi);
  const bool with_value = rows.values.defined();
  for (int64_t m = 0; m < static_cast<int64_t>(models_.size()); ++m) {
    Pass pass = forward(m, at, inputs, with_value);
    residual_sums(pass, rows, sums.select(0, m));
    if (grads == nullptr) continue;
    adjoints(pass, rows, value_weight, count);
    reverse(m, at, pass, *grads, with_value);
  }
}

void AtomsAnalyticLoss::accumulate(const torch::Tensor& x, const torch::Tensor& grad_samples,
                                   const torch::Tensor& values, double value_weight, int64_t count,
                                   std::vector<torch::Tensor>& grads, torch::Tensor& sums,
                                   const torch::Tensor& row_weights) {
  torch::NoGradGuard no_grad;
  auto sums_2d = sums_of(sums);
  const Rows all{x, grad_samples, value_weight > 0 && values.defined() ? values : torch::Tensor(), row_weights};
  for (int64_t first = 0; first < x.size(0); first += chunk_rows_)
    chunk(all.narrow(first, std::min(chunk_rows_, x.size(0) - first)), value_weight, count, &grads, sums_2d);
}

void AtomsAnalyticLoss::evaluate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                                 double value_weight, torch::Tensor& sums, const torch::Tensor& row_weights) {
  torch::NoGradGuard no_grad;
  auto sums_2d = sums_of(sums);
  const Rows all{x, grad_samples, value_weight > 0 && values.defined() ? values : torch::Tensor(), row_weights};
  for (int64_t first = 0; first < x.size(0); first += chunk_rows_)
    chunk(all.narrow(first, std::min(chunk_rows_, x.size(0) - first)), value_weight, 1, nullptr, sums_2d);
}

}  // namespace gradfit::model
