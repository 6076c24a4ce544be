#include "inference/export.h"

#include <unistd.h>

#include <cstdio>

#include "common/error.h"
#include "io/h5.h"
#include "model/activation.h"
#include "model/features.h"

namespace gradfit::inference {
namespace {

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

// forward and gradient for `hidden` hidden layers: z_i = h_{i-1} W_iᵀ + b_i, h_i = σ(z_i), V = h_{L-1} W_Lᵀ + b_L;
// dV/dx = ((W_L ⊙ σ'(z_{L-1})) W_{L-1} ⊙ σ'(z_{L-2}) ...) W_0, through φ's Jᵀ (model/features.h's script).
std::string methods_code(size_t hidden, const model::ActivationFunction& act, const UnitsCode& units) {
  const auto w = [](size_t i) { return "self.weight" + std::to_string(i); };
  const auto b = [](size_t i) { return "self.bias" + std::to_string(i); };
  std::string code =
      "def activation(self, z: Tensor) -> Tensor:\n    return " + std::string(act.script_value()) + "\n\n";
  code += "def activation_derivative(self, z: Tensor) -> Tensor:\n    return " + std::string(act.script_derivative()) +
          "\n\n";
  const std::string inputs = "self.features(xin)";
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
  code += "    return " + units.gradient_open + "self.features_transpose(xin, " + g + ")" + units.gradient_close + "\n";
  return code;
}

// The attributes every export has: the run's name and id, its activation, architecture, dtype, and `numbers`.
void register_run_attributes(torch::jit::Module& module, const io::SavedRun& run) {
  const std::pair<const char*, std::string> attributes[] = {
      {"run_name", run.name},
      {"run_id", run.id},
      {"activation", config::to_string(run.model.activation)},
      {"architecture", model::architecture(run.model, run.input_dim)},
      {"dtype", config::to_string(run.model.dtype)}};
  for (const auto& [name, value] : attributes) module.register_attribute(name, c10::StringType::get(), value);
  if (!run.numbers.empty())  // the atoms x holds, for a calculator to check (scripts/ase_calculator.py)
    module.register_attribute("numbers", c10::ListType::ofInts(), c10::List<int64_t>(run.numbers));
}

}  // namespace

torch::jit::Module scripted_potential(const io::SavedRun& run) {
  if (config::features_need_elements(run.model)) {
    torch::jit::Module module("__torch__.gradfit.AtomsPotential");
    register_run_attributes(module, run);
    module.register_attribute("features", c10::StringType::get(), std::string(config::to_string(run.model.features)));
    define_atoms_potential(module, run);
    return module;
  }
  torch::jit::Module module("__torch__.gradfit.Potential");
  const size_t hidden = run.model.widths.size();
  for (size_t i = 0; i <= hidden; ++i) {
    module.register_parameter("weight" + std::to_string(i), run.parameters.at(2 * i).second.clone(), false);
    module.register_parameter("bias" + std::to_string(i), run.parameters.at(2 * i + 1).second.clone(), false);
  }
  register_run_attributes(module, run);
  const auto& st = run.standardization;
  if (st.active()) {  // float64, whatever the model's dtype (see units_code)
    const auto f64 = [](const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64); };
    module.register_buffer("input_mean", f64(st.mean));
    module.register_buffer("input_scale", f64(st.scale));
    module.register_buffer("gradient_scale", f64(model::gradient_factors(st)));
    module.register_attribute("value_scale", c10::FloatType::get(), st.value_scale);
    module.register_attribute("value_offset", c10::FloatType::get(), st.value_offset);
  }
  // φ̃ as the run was trained: its kind (model/features.h) with the scaling it was fitted.
  model::Features features(run.model, run.input_dim);
  features.set_scaling(st.feature_mean, st.feature_scale);
  module.register_attribute("features", c10::StringType::get(), std::string(features.kind().name()));
  for (const auto& [name, buffer] : features.script_buffers(model::torch_dtype(run.model.dtype)))
    module.register_buffer(name, buffer);
  module.define(features.script() +
                methods_code(hidden, model::activation_of(run.model.activation), units_code(st.active())));
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

}  // namespace gradfit::inference
