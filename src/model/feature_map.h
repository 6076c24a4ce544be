#pragma once
// A feature kind: one φ(x) of model.features, with its Jacobian J = ∂φ/∂x applied from its structure, its check
// of the data, its memory per row and its TorchScript, written side by side in one class (model/features_*.h).
// model/features.h chooses the kind (its factory) and adds data.standardize's scaling around it; nothing else
// knows which kinds there are. docs/architecture.md, "Adding a feature kind", says how to add one.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/named_tensors.h"

namespace gradfit::model {

// What J needs at a chunk's rows, beside φ itself (B×m); the kind says what `first` and `second` hold.
struct FeatureRows {
  torch::Tensor phi, first, second;
};

// The first row (of B) the kind cannot take, and why ("atoms 2 and 5 are at the same place (...)"); row -1: none.
struct RowProblem {
  int64_t row = -1;
  std::string what;
};

// Where φ is per atom (atom_centered): a atoms' descriptors of `width` each, atom i's at columns [i·width,
// (i+1)·width); the model is then Σ_i NN_{element(i)} of them, one network per element (model/mlp.h).
struct AtomLayout {
  int64_t width = 0;
  std::vector<int64_t> elements;         // the distinct atomic numbers, ascending: one network each
  std::vector<int64_t> element_of_atom;  // per atom, its element's index in `elements`
};

class FeatureMap {
 public:
  FeatureMap(int64_t input_dim, int64_t dim) : n_(input_dim), m_(dim) {}
  virtual ~FeatureMap() = default;

  virtual const char* name() const = 0;     // its model.features
  int64_t input_dim() const { return n_; }  // n, x's components
  int64_t dim() const { return m_; }        // m, φ's
  virtual bool is_identity() const { return false; }

  // φ(x) (B×n -> B×m) by differentiable operations: autograd through it gives Jᵀ, the reference for the rest.
  virtual torch::Tensor phi(const torch::Tensor& x) const = 0;
  // φ and J's factors at x (B×n), in x's dtype and on its device; called without gradient.
  virtual FeatureRows at(const torch::Tensor& x) const = 0;
  // Jᵀ g: g (R×)B×m -> (R×)B×n, R models sharing the rows.
  virtual torch::Tensor transpose_times(const FeatureRows& rows, const torch::Tensor& g) const = 0;
  // J r: r (R×)B×n -> (R×)B×m. It may return a new tensor that the caller changes in place.
  virtual torch::Tensor times(const FeatureRows& rows, const torch::Tensor& r) const = 0;

  // The kind's own work per chunk row and model, in numbers of the model's dtype (train/memory.cpp).
  virtual double elements_per_row() const = 0;
  // The first of the rows x (B×n) whose φ would not be finite (e.g. two atoms at one place); none by default.
  virtual RowProblem first_problem(const torch::Tensor& /*x*/) const { return {}; }

  // TorchScript of methods `phi(self, x: Tensor) -> Tensor` and `phi_transpose(self, x: Tensor, g: Tensor) ->
  // Tensor`, the same operations as phi() and transpose_times(at(x), g), reading the buffers script_buffers gives
  // (floating ones in `dtype`, the model's).
  virtual std::string script() const = 0;
  virtual NamedTensors script_buffers(torch::Dtype /*dtype*/) const { return {}; }
  // φ per atom, for per-element networks; nullptr for one network of all of φ (the default).
  virtual const AtomLayout* atom_layout() const { return nullptr; }

 private:
  int64_t n_, m_;
};

// Tensors made on the CPU, and their copies on another tensor's device (floating ones in its dtype), made on first
// use and again when either changes, so that a step makes no host transfer. Undefined ones stay undefined.
class TablesLike {
 public:
  TablesLike() = default;
  explicit TablesLike(std::vector<torch::Tensor> on_cpu) : cpu_(std::move(on_cpu)) {}
  const std::vector<torch::Tensor>& cpu() const { return cpu_; }
  const std::vector<torch::Tensor>& like(const torch::Tensor& t) const {
    if (copied_ && dtype_ == t.scalar_type() && device_ == t.device()) return copies_;
    const auto floating = t.options().requires_grad(false);
    copies_.clear();
    for (const auto& c : cpu_)
      copies_.push_back(!c.defined() ? c : c.is_floating_point() ? c.to(floating) : c.to(t.device()));
    dtype_ = t.scalar_type();
    device_ = t.device();
    copied_ = true;
    return copies_;
  }

 private:
  std::vector<torch::Tensor> cpu_;
  mutable std::vector<torch::Tensor> copies_;
  mutable bool copied_ = false;
  mutable torch::ScalarType dtype_ = torch::kFloat64;
  mutable torch::Device device_ = torch::kCPU;
};

}  // namespace gradfit::model
