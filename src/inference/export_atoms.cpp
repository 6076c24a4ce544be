// The TorchScript module of a run of model.features atom_centered (inference/export.h): the descriptor of any
// structure of the trained elements, built from its atoms at each call, the per-element networks, and the element
// energies; the gradient by autograd.
#include <string>
#include <vector>

#include "common/error.h"
#include "inference/export.h"
#include "model/activation.h"
#include "model/features_atom_centered.h"

namespace gradfit::inference {
namespace {

// Atom i's element index among `elements` (a: int64), or an error naming the first atom of another element.
constexpr const char* kSpeciesCode = R"PY(
def species(self, numbers: Tensor) -> Tensor:
    match = numbers.to(self.elements.device).unsqueeze(1) == self.elements.unsqueeze(0)
    known = match.any(1)
    if not bool(known.all()):
        atom = int(torch.nonzero(~known)[0, 0])
        assert False, ("atom " + str(atom) + " has atomic number " + str(int(numbers[atom])) +
                       ", an element this model has no network for (its elements: " + self.element_names + ")")
    return match.long().argmax(1)

def cutoff(self, d: Tensor, rc: float) -> Tensor:
    return torch.where(d < rc, 0.5 * torch.cos(3.141592653589793 * d / rc) + 0.5, torch.zeros_like(d))

def distance(self, u: Tensor) -> Tensor:
    return (u * u).sum(-1).sqrt()
)PY";

// The descriptor of B frames of a atoms (r: B × a × 3) of elements `species`: B × a × w, TorchANI's AEV, every pair
// i ≠ j and every triplet i, {j < k} (as model/features_atom_centered.h, by its operations).
constexpr const char* kDescriptorCode = R"PY(
def descriptor(self, r: Tensor, species: Tensor) -> Tensor:
    b, a, s = r.size(0), r.size(1), self.elements.size(0)
    index = torch.arange(a, device=r.device)
    pi, pj = index.repeat_interleave(a), index.repeat([a])
    keep = pi != pj
    pi, pj = pi[keep], pj[keep]
    d = self.distance(r.index_select(1, pj) - r.index_select(1, pi))
    fr = self.cutoff(d, self.radial_cutoff).unsqueeze(-1)
    radial = 0.25 * torch.exp(-self.radial_eta * (d.unsqueeze(-1) - self.radial_shifts) ** 2) * fr
    kr = self.radial_shifts.size(0)
    slots = pi * s + species.index_select(0, pj)
    g_radial = torch.zeros([b, a * s, kr], dtype=r.dtype, device=r.device).index_add_(1, slots, radial)
    jk = torch.triu_indices(a, a, 1, device=r.device)
    q = jk.size(1)
    ti, tj, tk = index.repeat_interleave(q), jk[0].repeat([a]), jk[1].repeat([a])
    keep = (tj != ti) & (tk != ti)
    ti, tj, tk = ti[keep], tj[keep], tk[keep]
    u = r.index_select(1, tj) - r.index_select(1, ti)
    v = r.index_select(1, tk) - r.index_select(1, ti)
    dij, dik = self.distance(u), self.distance(v)
    cosine = (u * v).sum(-1) / torch.clamp(dij * dik, min=1e-10)
    angle = torch.acos(0.95 * cosine)
    fc = self.cutoff(dij, self.angular_cutoff) * self.cutoff(dik, self.angular_cutoff)
    radius = torch.exp(-self.angular_eta * ((dij + dik).unsqueeze(-1) / 2 - self.angular_shifts) ** 2)
    sections = 2 * ((1 + torch.cos(angle.unsqueeze(-1) - self.angle_shifts)) / 2) ** self.zeta
    ka, kz, t = self.angular_shifts.size(0), self.angle_shifts.size(0), ti.size(0)
    terms = (radius.unsqueeze(-1) * sections.unsqueeze(-2) * fc.unsqueeze(-1).unsqueeze(-1)).reshape(b, t, ka * kz)
    sj, sk = species.index_select(0, tj), species.index_select(0, tk)
    pairs = self.pair_of_elements.index_select(0, torch.minimum(sj, sk) * s + torch.maximum(sj, sk))
    p = s * (s + 1) // 2
    g_angular = torch.zeros([b, a * p, ka * kz], dtype=r.dtype, device=r.device).index_add_(1, ti * p + pairs, terms)
    return torch.cat([g_radial.reshape(b, a, s * kr), g_angular.reshape(b, a, p * ka * kz)], 2)
)PY";

// forward: Σ over each element's atoms of its network, then the element energies Σ_i b_{Z_i} added in float64 (as
// model/standardization.h's user_values); gradient: its autograd derivative.
std::string energy_code(const config::ModelSpec& spec, const std::vector<int64_t>& elements,
                        const model::ActivationFunction& act) {
  std::string code = "\ndef activation(self, z: Tensor) -> Tensor:\n    return " + std::string(act.script_value()) +
                     "\n\ndef forward(self, x: Tensor, numbers: Tensor) -> Tensor:\n"
                     "    species = self.species(numbers)\n"
                     "    b, a = x.size(0), species.size(0)\n"
                     "    r = x.to(self.radial_shifts.device, self.radial_shifts.dtype).reshape(b, a, 3)\n"
                     "    g = self.descriptor(r, species)\n"
                     "    w = g.size(2)\n"
                     "    v = torch.zeros([b], dtype=g.dtype, device=g.device)\n";
  for (size_t e = 0; e < elements.size(); ++e) {
    const std::string symbol = element_symbol(elements[e]);
    const size_t hidden = config::network_widths(spec, elements[e]).size();
    const auto w = [&](size_t i) { return "self." + symbol + "_weight" + std::to_string(i); };
    const auto bias = [&](size_t i) { return "self." + symbol + "_bias" + std::to_string(i); };
    code += "    atoms = torch.nonzero(species == " + std::to_string(e) + ").squeeze(1)\n";
    code += "    h = g.index_select(1, atoms).reshape(b * atoms.size(0), w)\n";
    for (size_t i = 0; i < hidden; ++i)
      code += "    h = self.activation(torch.linear(h, " + w(i) + ", " + bias(i) + "))\n";
    code += "    v = v + torch.linear(h, " + w(hidden) + ", " + bias(hidden) + ").reshape(b, atoms.size(0)).sum(1)\n";
  }
  code +=
      "    energy = self.element_energies.index_select(0, species).sum()\n"
      "    return (v.double() + energy).to(g.dtype)\n\n"
      "def gradient(self, x: Tensor, numbers: Tensor) -> Tensor:\n"
      "    xin = x.to(self.radial_shifts.device, self.radial_shifts.dtype).detach().requires_grad_(True)\n"
      "    v = self.forward(xin, numbers)\n"
      "    g = torch.autograd.grad([v.sum()], [xin])[0]\n"
      "    assert g is not None\n"
      "    return g\n";
  return code;
}

// The descriptor's parameters, and its tables as training has them (AtomCenteredFeatures::script_buffers).
void register_descriptor(torch::jit::Module& module, const io::SavedRun& run) {
  const auto& spec = run.model.descriptor;
  const std::pair<const char*, double> reals[] = {{"radial_cutoff", spec.radial_cutoff},
                                                  {"angular_cutoff", spec.angular_cutoff},
                                                  {"radial_eta", spec.radial_eta},
                                                  {"angular_eta", spec.angular_eta},
                                                  {"zeta", spec.zeta}};
  for (const auto& [name, value] : reals) module.register_attribute(name, c10::FloatType::get(), value);
  const model::Features features(run.model, run.input_dim);
  for (const auto& [name, buffer] : features.script_buffers(model::torch_dtype(run.model.dtype)))
    module.register_buffer(name, buffer);
}

}  // namespace

void define_atoms_potential(torch::jit::Module& module, const io::SavedRun& run) {
  const auto elements = run.model.elements.empty() ? model::distinct_elements(run.model.numbers) : run.model.elements;
  std::string names;
  size_t first = 0;  // the network's first parameter in run.parameters (Mlp::parameters() order)
  for (size_t e = 0; e < elements.size(); ++e) {
    const std::string symbol = element_symbol(elements[e]);
    names += (names.empty() ? "" : ", ") + symbol;
    const size_t hidden = config::network_widths(run.model, elements[e]).size();
    for (size_t i = 0; i <= hidden; ++i) {
      module.register_parameter(symbol + "_weight" + std::to_string(i), run.parameters.at(first++).second.clone(),
                                false);
      module.register_parameter(symbol + "_bias" + std::to_string(i), run.parameters.at(first++).second.clone(), false);
    }
  }
  TORCH_CHECK(first == run.parameters.size(), "parameters of ", elements.size(), " networks expected");
  const auto& st = run.standardization;
  const auto energies = st.element_energies.empty() ? std::vector<double>(elements.size(), 0.0) : st.element_energies;
  module.register_buffer("element_energies", torch::tensor(energies, torch::kFloat64));
  module.register_buffer("elements", torch::tensor(elements, torch::kInt64));
  module.register_attribute("element_names", c10::StringType::get(), names);
  register_descriptor(module, run);
  module.define(std::string(kSpeciesCode) + kDescriptorCode +
                energy_code(run.model, elements, model::activation_of(run.model.activation)));
}

}  // namespace gradfit::inference
