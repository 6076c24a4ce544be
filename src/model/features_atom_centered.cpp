#include "model/features_atom_centered.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

namespace gradfit::model {
namespace {

constexpr double kPi = 3.14159265358979323846;
// TorchANI's factor on cos θ before acos, which keeps acos's derivative finite at θ = 0 and π.
constexpr double kCosineFactor = 0.95;
// TorchANI's floor of R_ij R_ik under cos θ.
constexpr double kDistanceProductFloor = 1e-10;

enum Table : size_t {
  kPairI,
  kPairJ,
  kRadialSlot,
  kTripletI,
  kTripletJ,
  kTripletK,
  kAngularSlot,
  kRadialShifts,
  kAngularShifts,
  kAngleShifts,
  kTables
};

// `count` points from `start` up to (not including) `end`: torch.linspace(start, end, count + 1)[:-1].
torch::Tensor shifts(double start, double end, int64_t count) {
  return torch::linspace(start, end, count + 1, torch::kFloat64).narrow(0, 0, count);
}

// TorchANI's index of the unordered pair of elements (a, b) among S: row-major over a <= b.
int64_t pair_index(int64_t a, int64_t b, int64_t elements) {
  if (a > b) std::swap(a, b);
  return a * elements - a * (a - 1) / 2 + (b - a);
}

// f_c(R) = ½ cos(π R / R_c) + ½ within R_c, 0 beyond.
torch::Tensor cutoff(const torch::Tensor& d, double cutoff) {
  const auto inside = d.lt(cutoff);
  return torch::where(inside, torch::cos(d * (kPi / cutoff)) * 0.5 + 0.5, torch::zeros_like(d));
}

torch::Tensor int_tensor(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::kInt64);
}

std::vector<torch::Tensor> make_tables(const config::AtomCenteredSpec& spec, const AtomLayout& layout) {
  const auto atoms = static_cast<int64_t>(layout.element_of_atom.size());
  const auto elements = static_cast<int64_t>(layout.elements.size());
  const int64_t element_pairs = elements * (elements + 1) / 2;
  const auto& s = layout.element_of_atom;
  std::vector<int64_t> pi, pj, radial_slot, ti, tj, tk, angular_slot;
  for (int64_t i = 0; i < atoms; ++i)
    for (int64_t j = 0; j < atoms; ++j) {
      if (j == i) continue;
      pi.push_back(i), pj.push_back(j), radial_slot.push_back(i * elements + s[j]);
      for (int64_t k = j + 1; k < atoms; ++k) {
        if (k == i) continue;
        ti.push_back(i), tj.push_back(j), tk.push_back(k);
        angular_slot.push_back(i * element_pairs + pair_index(s[j], s[k], elements));
      }
    }
  std::vector<torch::Tensor> t(kTables);
  t[kPairI] = int_tensor(pi), t[kPairJ] = int_tensor(pj), t[kRadialSlot] = int_tensor(radial_slot);
  t[kTripletI] = int_tensor(ti), t[kTripletJ] = int_tensor(tj), t[kTripletK] = int_tensor(tk);
  t[kAngularSlot] = int_tensor(angular_slot);
  t[kRadialShifts] = shifts(spec.radial_start, spec.radial_cutoff, spec.radial_divisions);
  t[kAngularShifts] = shifts(spec.angular_start, spec.angular_cutoff, spec.angular_divisions);
  t[kAngleShifts] = shifts(0, kPi, spec.angle_sections) + kPi / (2.0 * static_cast<double>(spec.angle_sections));
  return t;
}

AtomLayout layout_of(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& numbers) {
  AtomLayout layout;
  layout.elements = distinct_elements(numbers);
  layout.width = atom_descriptor_width(spec, static_cast<int64_t>(layout.elements.size()));
  for (const int64_t z : numbers)
    layout.element_of_atom.push_back(std::lower_bound(layout.elements.begin(), layout.elements.end(), z) -
                                     layout.elements.begin());
  return layout;
}

}  // namespace

int64_t atom_descriptor_width(const config::AtomCenteredSpec& spec, int64_t elements) {
  return elements * spec.radial_divisions +
         elements * (elements + 1) / 2 * spec.angular_divisions * spec.angle_sections;
}

std::vector<int64_t> distinct_elements(const std::vector<int64_t>& numbers) {
  std::vector<int64_t> elements(numbers);
  std::sort(elements.begin(), elements.end());
  elements.erase(std::unique(elements.begin(), elements.end()), elements.end());
  return elements;
}

const char* element_symbol(int64_t number) {
  static constexpr std::array<const char*, 118> kSymbols{
      "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si", "P",  "S",  "Cl",
      "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se",
      "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb",
      "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er",
      "Tm", "Yb", "Lu", "Hf", "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At",
      "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No",
      "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};
  TORCH_CHECK(number >= 1 && number <= 118, "element_symbol: atomic number ", number);
  return kSymbols[static_cast<size_t>(number - 1)];
}

AtomCenteredFeatures::AtomCenteredFeatures(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& numbers)
    : FeatureMap(3 * static_cast<int64_t>(numbers.size()),
                 static_cast<int64_t>(numbers.size()) * layout_of(spec, numbers).width),
      spec_(spec),
      layout_(layout_of(spec, numbers)),
      atoms_(static_cast<int64_t>(numbers.size())),
      tables_(make_tables(spec, layout_)) {
  const auto elements = static_cast<int64_t>(layout_.elements.size());
  pairs_of_elements_ = elements * (elements + 1) / 2;
}

torch::Tensor AtomCenteredFeatures::radial(const torch::Tensor& atoms) const {
  const int64_t rows = atoms.size(0), elements = static_cast<int64_t>(layout_.elements.size());
  const auto v = atoms.index_select(1, table(atoms, kPairJ)) - atoms.index_select(1, table(atoms, kPairI));
  const auto d = v.square().sum(-1).sqrt();  // B × pairs
  const auto gauss = torch::exp((d.unsqueeze(-1) - table(atoms, kRadialShifts)).square() * -spec_.radial_eta);
  const auto terms = gauss * 0.25 * cutoff(d, spec_.radial_cutoff).unsqueeze(-1);  // B × pairs × K_R
  const int64_t k = spec_.radial_divisions;
  return torch::zeros({rows, atoms_ * elements, k}, terms.options())
      .index_add(1, table(atoms, kRadialSlot), terms)
      .view({rows, atoms_, elements * k});
}

torch::Tensor AtomCenteredFeatures::angular(const torch::Tensor& atoms) const {
  const int64_t rows = atoms.size(0);
  const auto centre = atoms.index_select(1, table(atoms, kTripletI));
  const auto vj = atoms.index_select(1, table(atoms, kTripletJ)) - centre;  // B × triplets × 3
  const auto vk = atoms.index_select(1, table(atoms, kTripletK)) - centre;
  const auto dj = vj.square().sum(-1).sqrt(), dk = vk.square().sum(-1).sqrt();
  const auto cosine = (vj * vk).sum(-1) / torch::clamp(dj * dk, kDistanceProductFloor);
  const auto theta = torch::acos(cosine * kCosineFactor).unsqueeze(-1);
  const auto angle = torch::pow((torch::cos(theta - table(atoms, kAngleShifts)) + 1) * 0.5, spec_.zeta);  // K_Z
  const auto mean = ((dj + dk) * 0.5).unsqueeze(-1);
  const auto radius = torch::exp((mean - table(atoms, kAngularShifts)).square() * -spec_.angular_eta);  // K_A
  const auto fc = (cutoff(dj, spec_.angular_cutoff) * cutoff(dk, spec_.angular_cutoff)).unsqueeze(-1).unsqueeze(-1);
  const auto terms = (radius.unsqueeze(-1) * angle.unsqueeze(-2) * fc * 2).flatten(-2);  // B × triplets × K_A·K_Z
  const int64_t k = spec_.angular_divisions * spec_.angle_sections;
  return torch::zeros({rows, atoms_ * pairs_of_elements_, k}, terms.options())
      .index_add(1, table(atoms, kAngularSlot), terms)
      .view({rows, atoms_, pairs_of_elements_ * k});
}

torch::Tensor AtomCenteredFeatures::phi(const torch::Tensor& x) const {
  const auto atoms = x.reshape({x.size(0), atoms_, 3});
  return torch::cat({radial(atoms), angular(atoms)}, -1).reshape({x.size(0), -1});
}

FeatureRows AtomCenteredFeatures::at(const torch::Tensor& x) const {
  FeatureRows rows;
  rows.phi = phi(x);
  rows.first = x;
  return rows;
}

torch::Tensor AtomCenteredFeatures::transpose_times(const FeatureRows& rows, const torch::Tensor& g) const {
  const torch::AutoGradMode grad_mode(true);
  const auto x = rows.first.detach().requires_grad_(true);
  const auto phi_x = phi(x);
  if (g.dim() == 2) return torch::autograd::grad({phi_x}, {x}, {g})[0];
  std::vector<torch::Tensor> out;
  for (int64_t r = 0; r < g.size(0); ++r)
    out.push_back(torch::autograd::grad({phi_x}, {x}, {g[r]}, /*retain_graph=*/true)[0]);
  return torch::stack(out);
}

torch::Tensor AtomCenteredFeatures::times(const FeatureRows& rows, const torch::Tensor& r) const {
  // J r as the derivative by u of (Jᵀ u) · r, Jᵀ u linear in u.
  const torch::AutoGradMode grad_mode(true);
  const auto x = rows.first.detach().requires_grad_(true);
  const auto phi_x = phi(x);
  const auto u = torch::zeros_like(phi_x).requires_grad_(true);
  const auto jt_u = torch::autograd::grad({phi_x}, {x}, {u}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  if (r.dim() == 2) return torch::autograd::grad({jt_u}, {u}, {r})[0];
  std::vector<torch::Tensor> out;
  for (int64_t m = 0; m < r.size(0); ++m)
    out.push_back(torch::autograd::grad({jt_u}, {u}, {r[m]}, /*retain_graph=*/true)[0]);
  return torch::stack(out);
}

double AtomCenteredFeatures::elements_per_row() const {
  const double a = static_cast<double>(atoms_), pairs = a * (a - 1), triplets = a * (a - 1) * (a - 2) / 2;
  const double radial_terms = pairs * static_cast<double>(spec_.radial_divisions);
  const double angular_terms = triplets * static_cast<double>(spec_.angular_divisions * spec_.angle_sections);
  return 6 * (radial_terms + angular_terms) + 2 * static_cast<double>(dim()) + 2 * double(input_dim());
}

RowProblem AtomCenteredFeatures::first_problem(const torch::Tensor& x) const {
  if (x.size(0) == 0) return {};
  torch::NoGradGuard no_grad;
  const auto atoms = x.reshape({x.size(0), atoms_, 3});
  const auto& pi = tables_.cpu()[kPairI];
  const auto& pj = tables_.cpu()[kPairJ];
  const auto v = atoms.index_select(1, table(x, kPairJ)) - atoms.index_select(1, table(x, kPairI));
  const auto hits = v.square().sum(-1).eq(0).nonzero();  // B × ordered pairs: the first is i < j
  if (hits.size(0) == 0) return {};
  const auto first = hits[0].cpu();
  const int64_t pair = first[1].item<int64_t>();
  return {first[0].item<int64_t>(), "atoms " + std::to_string(pi[pair].item<int64_t>()) + " and " +
                                        std::to_string(pj[pair].item<int64_t>()) +
                                        " are at the same place (model.features atom_centered needs distinct atoms)"};
}

std::string AtomCenteredFeatures::script() const {
  throw std::logic_error("model.features atom_centered has no TorchScript yet");
}

}  // namespace gradfit::model
