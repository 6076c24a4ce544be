#include "model/features.h"

#include "model/features_atom_centered.h"
#include "model/features_identity.h"
#include "model/features_inverse_distances.h"
#include "model/features_periodic.h"

namespace gradfit::model {

std::shared_ptr<const FeatureMap> make_feature_map(const config::ModelSpec& spec, int64_t n) {
  switch (spec.features) {
    case config::FeatureKind::identity: return std::make_shared<IdentityFeatures>(n);
    case config::FeatureKind::inverse_distances: return std::make_shared<InverseDistanceFeatures>(n);
    case config::FeatureKind::periodic:
      TORCH_CHECK(static_cast<int64_t>(spec.periods.size()) == n, "periodic features: ", spec.periods.size(),
                  " periods for points of ", n, " components");
      return std::make_shared<PeriodicFeatures>(spec.periods);
    case config::FeatureKind::atom_centered:  // its n is 3 per atom of spec.numbers (the data file's)
      TORCH_CHECK(!spec.numbers.empty(), "atom_centered features: no atomic numbers (the data file's 'numbers')");
      return std::make_shared<AtomCenteredFeatures>(spec.descriptor, spec.numbers, spec.elements);
  }
  TORCH_CHECK(false, "unknown model.features ", static_cast<int>(spec.features));
}

int64_t feature_dim(const config::ModelSpec& spec, int64_t n) {
  return make_feature_map(spec, n)->dim();
}

Features::Features() : kind_(std::make_shared<IdentityFeatures>(0)) {}

Features::Features(const config::ModelSpec& spec, int64_t n) : kind_(make_feature_map(spec, n)) {}

Features::Features(std::shared_ptr<const FeatureMap> kind) : kind_(std::move(kind)) {}

void Features::set_scaling(const std::vector<double>& mean, const std::vector<double>& scale) {
  TORCH_CHECK(mean.empty() || !is_identity(), "Features::set_scaling: the identity is not scaled");
  scaled_ = !mean.empty();
  scaling_ = scaled_ ? TablesLike({torch::tensor(mean, torch::kFloat64), torch::tensor(scale, torch::kFloat64)})
                     : TablesLike();
}

torch::Tensor Features::operator()(const torch::Tensor& x) const {
  const auto phi = kind_->phi(x);
  if (!scaled_) return phi;
  const auto& t = scaling_.like(x);
  return (phi - t[0]) / t[1];
}

Features::AtRows Features::at(const torch::Tensor& x) const {
  torch::NoGradGuard no_grad;
  AtRows rows = kind_->at(x);
  if (scaled_) {  // J's factors stay those of φ: J̃ divides by σ in times and transpose_times
    const auto& t = scaling_.like(x);
    rows.phi = (rows.phi - t[0]) / t[1];
  }
  return rows;
}

torch::Tensor Features::transpose_times(const AtRows& rows, const torch::Tensor& g) const {
  return kind_->transpose_times(rows, scaled_ ? g / scaling_.like(g)[1] : g);  // diag(1/σ) g
}

torch::Tensor Features::times(const AtRows& rows, const torch::Tensor& r) const {
  auto jr = kind_->times(rows, r);
  return scaled_ ? jr.div_(scaling_.like(r)[1]) : jr;
}

std::string Features::script() const {
  const std::string scale_phi = scaled_ ? "(phi - self.feature_mean) / self.feature_scale" : "phi";
  const std::string scale_g = scaled_ ? "    g = g / self.feature_scale\n" : "";
  return kind_->script() +
         "def features(self, x: Tensor) -> Tensor:\n"
         "    phi = self.phi(x)\n"
         "    return " +
         scale_phi +
         "\n\n"
         "def features_transpose(self, x: Tensor, g: Tensor) -> Tensor:\n" +
         scale_g + "    return self.phi_transpose(x, g)\n\n";
}

NamedTensors Features::script_buffers(torch::Dtype dtype) const {
  NamedTensors buffers = kind_->script_buffers(dtype);
  if (scaled_) {  // as operator(), in the model's dtype
    buffers.emplace_back("feature_mean", scaling_.cpu()[0].to(dtype));
    buffers.emplace_back("feature_scale", scaling_.cpu()[1].to(dtype));
  }
  return buffers;
}

}  // namespace gradfit::model
