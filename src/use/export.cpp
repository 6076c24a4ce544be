#include "use/export.h"

#include <unistd.h>

#include <cstdio>

#include "common/error.h"
#include "io/h5.h"

namespace gradfit::use {
namespace {

// TorchScript of σ(z) and σ'(z) for an activation, the derivatives as LibTorch's own backward functions compute
// them (softplus: 1 above its threshold of 20, as torch.nn.functional.softplus).
struct ActivationCode {
  const char* value;
  const char* derivative;
};

ActivationCode activation_code(config::Activation activation) {
  switch (activation) {
    case config::Activation::relu: return {"torch.relu(z)", "(z > 0).to(z.dtype)"};
    case config::Activation::tanh: return {"torch.tanh(z)", "1.0 - torch.tanh(z) * torch.tanh(z)"};
    case config::Activation::softplus:
      return {"torch.softplus(z, 1.0, 20.0)",
              "torch.where(z > 20.0, torch.ones_like(z), torch.exp(z) / (torch.exp(z) + 1.0))"};
    case config::Activation::silu: return {"torch.silu(z)", "torch.sigmoid(z) * (1.0 + z * (1.0 - torch.sigmoid(z)))"};
    case config::Activation::gelu:
      return {"torch.gelu(z)",
              "0.5 * (1.0 + torch.erf(z * 0.70710678118654752440)) + z * torch.exp(-0.5 * z * z) * "
              "0.39894228040143267794"};
  }
  throw Error("unknown activation");
}

// TorchScript of the standardization a run was trained under (model/standardization.h, the same operations in the
// same order): x to x̃, and Ṽ, ∂Ṽ/∂x̃ back to the user's units; the identity for a run trained without.
struct UnitsCode {
  std::string input = "x.to(self.weight0.dtype)";
  std::string value_open, value_close, gradient_open, gradient_close;
};

UnitsCode units_code(bool standardized) {
  UnitsCode code;
  if (!standardized) return code;
  code.input = "((x.to(self.weight0.dtype).double() - self.input_mean) / self.input_scale).to(self.weight0.dtype)";
  code.value_open = code.gradient_open = "(";
  code.value_close = ".double() * self.value_scale + self.value_offset).to(self.weight0.dtype)";
  code.gradient_close = ".double() * self.gradient_scale).to(self.weight0.dtype)";
  return code;
}

// TorchScript of the features φ(x) (model/features.h, the same operations) and of dV/dx = Jᵀ g from g = ∂V/∂φ,
// with the buffers pair_i, pair_j (inverse distances) or angular, columns (periodic); empty for the identity.
// With `scaled` (data.standardize), φ̃ = (φ − μ_φ) / σ_φ from the buffers feature_mean and feature_scale.
std::string features_code(config::Features features, bool scaled) {
  const std::string scale_phi = scaled ? "(phi - self.feature_mean) / self.feature_scale" : "phi";
  const std::string scale_g = scaled ? "    g = g / self.feature_scale\n" : "";
  if (features == config::Features::inverse_distances)
    return "def pair_differences(self, x: Tensor) -> Tensor:\n"
           "    atoms = x.reshape(x.size(0), -1, 3)\n"
           "    return atoms.index_select(1, self.pair_i) - atoms.index_select(1, self.pair_j)\n\n"
           "def features(self, x: Tensor) -> Tensor:\n"
           "    phi = self.pair_differences(x).square().sum(-1).sqrt().reciprocal()\n"
           "    return " +
           scale_phi +
           "\n\n"
           "def features_transpose(self, x: Tensor, g: Tensor) -> Tensor:\n" +
           scale_g +
           "    d = self.pair_differences(x)\n"
           "    phi = d.square().sum(-1).sqrt().reciprocal()\n"
           "    u = (g * (phi * phi * phi)).unsqueeze(-1) * d\n"
           "    out = torch.zeros(x.size(0), x.size(1) // 3, 3, dtype=u.dtype, device=u.device)\n"
           "    out.index_add_(1, self.pair_j, u)\n"
           "    out.index_add_(1, self.pair_i, u.neg())\n"
           "    return out.flatten(-2)\n\n";
  if (features == config::Features::periodic)
    return "def features(self, x: Tensor) -> Tensor:\n"
           "    theta = x * self.angular\n"
           "    phi = torch.cat([x, theta.cos(), theta.sin()], -1).index_select(-1, self.columns)\n"
           "    return " +
           scale_phi +
           "\n\n"
           "def features_transpose(self, x: Tensor, g: Tensor) -> Tensor:\n" +
           scale_g +
           "    theta = x * self.angular\n"
           "    n = x.size(1)\n"
           "    spread = torch.zeros(x.size(0), 3 * n, dtype=g.dtype, device=g.device)\n"
           "    spread.index_copy_(1, self.columns, g)\n"
           "    return spread.narrow(1, 0, n) + theta.sin().neg() * self.angular * spread.narrow(1, n, n) + "
           "theta.cos() * self.angular * spread.narrow(1, 2 * n, n)\n\n";
  return "";
}

// forward and gradient for `hidden` hidden layers: z_i = h_{i-1} W_iᵀ + b_i, h_i = σ(z_i), V = h_{L-1} W_Lᵀ + b_L;
// dV/dx = ((W_L ⊙ σ'(z_{L-1})) W_{L-1} ⊙ σ'(z_{L-2}) ...) W_0, through φ's Jᵀ where the run has features.
std::string methods_code(size_t hidden, const ActivationCode& act, const UnitsCode& units, bool features) {
  const auto w = [](size_t i) { return "self.weight" + std::to_string(i); };
  const auto b = [](size_t i) { return "self.bias" + std::to_string(i); };
  std::string code = "def activation(self, z: Tensor) -> Tensor:\n    return " + std::string(act.value) + "\n\n";
  code += "def activation_derivative(self, z: Tensor) -> Tensor:\n    return " + std::string(act.derivative) + "\n\n";
  const std::string inputs = features ? "self.features(xin)" : "xin";
  code += "def forward(self, x: Tensor) -> Tensor:\n    xin = " + units.input + "\n    h = " + inputs + "\n";
  for (size_t i = 0; i < hidden; ++i) code += "    h = self.activation(torch.linear(h, " + w(i) + ", " + b(i) + "))\n";
  code += "    return " + units.value_open + "torch.linear(h, " + w(hidden) + ", " + b(hidden) + ").squeeze(1)" +
          units.value_close + "\n\n";
  code += "def gradient(self, x: Tensor) -> Tensor:\n    xin = " + units.input + "\n    h = " + inputs +
          "\n    slopes: List[Tensor] = []\n";
  for (size_t i = 0; i < hidden; ++i) {
    code += "    z = torch.linear(h, " + w(i) + ", " + b(i) + ")\n";
    code += "    slopes.append(self.activation_derivative(z))\n    h = self.activation(z)\n";
  }
  code += "    a = " + w(hidden) + " * slopes[" + std::to_string(hidden - 1) + "]\n";
  for (size_t i = hidden - 1; i > 0; --i)
    code += "    a = torch.mm(a, " + w(i) + ") * slopes[" + std::to_string(i - 1) + "]\n";
  const std::string g = "torch.mm(a, " + w(0) + ")";
  code += "    return " + units.gradient_open + (features ? "self.features_transpose(xin, " + g + ")" : g) +
          units.gradient_close + "\n";
  return code;
}

// The buffers of features_code and the attribute `features`.
void register_features(torch::jit::Module& module, const io::SavedRun& run) {
  module.register_attribute("features", c10::StringType::get(), std::string(config::to_string(run.model.features)));
  const model::Features features(run.model, run.input_dim);
  const auto& tables = features.index_tables();
  if (run.model.features == config::Features::inverse_distances) {
    module.register_buffer("pair_i", tables.pair_i);
    module.register_buffer("pair_j", tables.pair_j);
  } else {
    module.register_buffer("angular", tables.angular.to(model::torch_dtype(run.model.dtype)));
    module.register_buffer("columns", tables.columns);
  }
  const auto& st = run.standardization;
  if (st.feature_mean.empty()) return;
  const auto dtype = model::torch_dtype(run.model.dtype);  // as Features::scaled, in the model's dtype
  module.register_buffer("feature_mean", torch::tensor(st.feature_mean, torch::kFloat64).to(dtype));
  module.register_buffer("feature_scale", torch::tensor(st.feature_scale, torch::kFloat64).to(dtype));
}

}  // namespace

torch::jit::Module scripted_potential(const io::SavedRun& run) {
  torch::jit::Module module("__torch__.gradfit.Potential");
  const size_t hidden = run.model.widths.size();
  for (size_t i = 0; i <= hidden; ++i) {
    module.register_parameter("weight" + std::to_string(i), run.parameters.at(2 * i).second.clone(), false);
    module.register_parameter("bias" + std::to_string(i), run.parameters.at(2 * i + 1).second.clone(), false);
  }
  const std::pair<const char*, std::string> attributes[] = {
      {"run_name", run.name},
      {"run_id", run.id},
      {"activation", config::to_string(run.model.activation)},
      {"architecture", model::architecture(run.model, run.input_dim)},
      {"dtype", config::to_string(run.model.dtype)}};
  for (const auto& [name, value] : attributes) module.register_attribute(name, c10::StringType::get(), value);
  if (!run.numbers.empty())  // the atoms x holds, for a calculator to check (scripts/ase_calculator.py)
    module.register_attribute("numbers", c10::ListType::ofInts(), c10::List<int64_t>(run.numbers));
  const auto& st = run.standardization;
  if (st.active()) {  // float64, whatever the model's dtype (see units_code)
    const auto f64 = [](const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64); };
    module.register_buffer("input_mean", f64(st.mean));
    module.register_buffer("input_scale", f64(st.scale));
    module.register_buffer("gradient_scale", f64(model::gradient_factors(st)));
    module.register_attribute("value_scale", c10::FloatType::get(), st.value_scale);
    module.register_attribute("value_offset", c10::FloatType::get(), st.value_offset);
  }
  const bool features = run.model.features != config::Features::identity;
  if (features) register_features(module, run);
  module.define(features_code(run.model.features, !st.feature_mean.empty()) +
                methods_code(hidden, activation_code(run.model.activation), units_code(st.active()), features));
  return module;
}

void export_model(const io::SavedRun& run, const std::string& path) {
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  try {
    try {
      scripted_potential(run).save(temporary);
    } catch (const c10::Error& e) {
      throw IoError("cannot write '" + temporary + "': " + message_of(e));
    }
    io::durable_rename(temporary, path);
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
}

}  // namespace gradfit::use
