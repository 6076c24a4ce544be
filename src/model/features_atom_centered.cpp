#include "model/features_atom_centered.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "model/descriptor_kernels.h"

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
  kPairOffset,     // per pair, its first radial term's column in φ's frame row: i·w + s_j·K_R
  kTripletOffset,  // per triplet, its angular block's: i·w + S·K_R + (pair of s_j, s_k)·K_A·K_Z
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

// f_c'(R) = −½ sin(π R / R_c) π / R_c within R_c, 0 beyond.
torch::Tensor cutoff_slope(const torch::Tensor& d, double cutoff) {
  const auto inside = d.lt(cutoff);
  return torch::where(inside, torch::sin(d * (kPi / cutoff)) * (-0.5 * kPi / cutoff), torch::zeros_like(d));
}

// J's factors at a chunk's rows, beside φ (FeatureRows):
// - per pair i→j (`first`, B × pairs × (3 + K_R)): the unit vector e from atom i to j, then ∂t_k/∂R_ij of the
//   pair's K_R radial terms t_k;
// - per triplet (`second`, B × triplets × (12 + 2·K_Z + 2·K_A)): e_j and e_k (unit vectors from atom i to j and
//   k), c = cos θ_ijk, R_ij, R_ik, F = f_c(R_ij) f_c(R_ik), ∂F/∂R_ij, ∂F/∂R_ik; then A_z and dA_z/dc (K_Z each,
//   the angle terms as functions of c) and Q_a and dQ_a/dm (K_A each, the radius terms as functions of
//   m = (R_ij + R_ik)/2). The triplet's terms are T_az = 2 Q_a A_z F.
struct TripletFactors {
  torch::Tensor ej, ek, c, dj, dk, f, fj, fk;  // B × triplets × 3 for e_j, e_k, B × triplets × 1 for the others
  torch::Tensor a, da, q, dq;                  // B × triplets × K_Z, K_Z, K_A, K_A
};
constexpr int64_t kTripletScalars = 12;  // e_j, e_k, c, R_ij, R_ik, F, ∂F/∂R_ij, ∂F/∂R_ik

TripletFactors unpack_triplets(const torch::Tensor& packed, int64_t angle_sections, int64_t angular_divisions) {
  int64_t column = 0;
  const auto take = [&](int64_t count) {
    auto view = packed.narrow(-1, column, count);
    column += count;
    return view;
  };
  TripletFactors t;
  t.ej = take(3), t.ek = take(3), t.c = take(1), t.dj = take(1), t.dk = take(1);
  t.f = take(1), t.fj = take(1), t.fk = take(1);
  t.a = take(angle_sections), t.da = take(angle_sections);
  t.q = take(angular_divisions), t.dq = take(angular_divisions);
  return t;
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
  const int64_t kr = spec.radial_divisions, block = spec.angular_divisions * spec.angle_sections;
  t[kPairOffset] = t[kRadialSlot].div(elements, "floor") * layout.width + t[kRadialSlot].remainder(elements) * kr;
  t[kTripletOffset] = t[kAngularSlot].div(element_pairs, "floor") * layout.width + elements * kr +
                      t[kAngularSlot].remainder(element_pairs) * block;
  return t;
}

AtomLayout layout_of(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& numbers,
                     const std::vector<int64_t>& elements) {
  AtomLayout layout;
  layout.elements = elements.empty() ? distinct_elements(numbers) : elements;
  layout.width = atom_descriptor_width(spec, static_cast<int64_t>(layout.elements.size()));
  for (const int64_t z : numbers) {
    const auto at = std::lower_bound(layout.elements.begin(), layout.elements.end(), z);
    TORCH_CHECK(at != layout.elements.end() && *at == z, "atom_centered: atomic number ", z,
                " is not one of the model's elements");
    layout.element_of_atom.push_back(at - layout.elements.begin());
  }
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

AtomCenteredFeatures::AtomCenteredFeatures(const config::AtomCenteredSpec& spec, const std::vector<int64_t>& numbers,
                                           const std::vector<int64_t>& elements)
    : FeatureMap(3 * static_cast<int64_t>(numbers.size()),
                 static_cast<int64_t>(numbers.size()) * layout_of(spec, numbers, elements).width),
      spec_(spec),
      layout_(layout_of(spec, numbers, elements)),
      atoms_(static_cast<int64_t>(numbers.size())),
      tables_(make_tables(spec, layout_)) {
  const auto species = static_cast<int64_t>(layout_.elements.size());
  pairs_of_elements_ = species * (species + 1) / 2;
  const auto& t = tables_.cpu();
  auto& g = geometry_;
  g.atoms = atoms_, g.pairs = t[kPairI].size(0), g.triplets = t[kTripletI].size(0), g.width = dim();
  g.radial_divisions = spec.radial_divisions, g.angular_divisions = spec.angular_divisions;
  g.angle_sections = spec.angle_sections;
  g.radial_cutoff = spec.radial_cutoff, g.angular_cutoff = spec.angular_cutoff;
  g.radial_eta = spec.radial_eta, g.angular_eta = spec.angular_eta, g.zeta = spec.zeta;
  g.pair_i = t[kPairI].data_ptr<int64_t>(), g.pair_j = t[kPairJ].data_ptr<int64_t>();
  g.pair_offset = t[kPairOffset].data_ptr<int64_t>();
  g.triplet_i = t[kTripletI].data_ptr<int64_t>(), g.triplet_j = t[kTripletJ].data_ptr<int64_t>();
  g.triplet_k = t[kTripletK].data_ptr<int64_t>(), g.triplet_offset = t[kTripletOffset].data_ptr<int64_t>();
  g.radial_shifts = t[kRadialShifts].data_ptr<double>(), g.angular_shifts = t[kAngularShifts].data_ptr<double>();
  angle_shift_trig_ = {torch::cos(t[kAngleShifts]), torch::sin(t[kAngleShifts])};
  g.angle_shift_cosines = angle_shift_trig_[0].data_ptr<double>();
  g.angle_shift_sines = angle_shift_trig_[1].data_ptr<double>();
}

bool AtomCenteredFeatures::on_kernels(const torch::Tensor& t) const {
  return t.is_cpu() && !tensor_operations_;
}

namespace {
// Frames per task of the descriptor's kernels: each frame is a few hundred pairs and triplets.
constexpr int64_t kFramesPerTask = 4;
}  // namespace

FeatureRows AtomCenteredFeatures::kernel_at(const torch::Tensor& x) const {
  const auto points = x.contiguous();
  const int64_t frames = x.size(0);
  FeatureRows rows;
  rows.phi = torch::empty({frames, dim()}, x.options());
  rows.first = torch::empty({frames, geometry_.pairs, geometry_.pair_factors()}, x.options());
  rows.second = torch::empty({frames, geometry_.triplets, geometry_.triplet_factors()}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "atom_centered_at", [&] {
    at::parallel_for(0, frames, kFramesPerTask, [&](int64_t begin, int64_t end) {
      descriptor::at(geometry_, points.data_ptr<scalar_t>(), rows.phi.data_ptr<scalar_t>(),
                     rows.first.data_ptr<scalar_t>(), rows.second.data_ptr<scalar_t>(), begin, end);
    });
  });
  return rows;
}

torch::Tensor AtomCenteredFeatures::kernel_transpose(const FeatureRows& rows, const torch::Tensor& g) const {
  const auto grad = g.contiguous();
  auto out = torch::empty({g.size(0), input_dim()}, g.options());
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "atom_centered_transpose", [&] {
    at::parallel_for(0, g.size(0), kFramesPerTask, [&](int64_t begin, int64_t end) {
      descriptor::transpose_times(geometry_, rows.first.data_ptr<scalar_t>(), rows.second.data_ptr<scalar_t>(),
                                  grad.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), begin, end);
    });
  });
  return out;
}

torch::Tensor AtomCenteredFeatures::kernel_times(const FeatureRows& rows, const torch::Tensor& r) const {
  const auto moves = r.contiguous();
  auto out = torch::empty({r.size(0), dim()}, r.options());
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "atom_centered_times", [&] {
    at::parallel_for(0, r.size(0), kFramesPerTask, [&](int64_t begin, int64_t end) {
      descriptor::times(geometry_, rows.first.data_ptr<scalar_t>(), rows.second.data_ptr<scalar_t>(),
                        moves.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), begin, end);
    });
  });
  return out;
}

torch::Tensor AtomCenteredFeatures::radial_sum(const torch::Tensor& terms) const {
  const int64_t rows = terms.size(0), elements = static_cast<int64_t>(layout_.elements.size());
  const int64_t k = spec_.radial_divisions;
  return torch::zeros({rows, atoms_ * elements, k}, terms.options())
      .index_add(1, table(terms, kRadialSlot), terms)
      .view({rows, atoms_, elements * k});
}

torch::Tensor AtomCenteredFeatures::angular_sum(const torch::Tensor& terms) const {
  const int64_t rows = terms.size(0), k = spec_.angular_divisions * spec_.angle_sections;
  return torch::zeros({rows, atoms_ * pairs_of_elements_, k}, terms.options())
      .index_add(1, table(terms, kAngularSlot), terms)
      .view({rows, atoms_, pairs_of_elements_ * k});
}

torch::Tensor AtomCenteredFeatures::pair_terms(const torch::Tensor& atoms, torch::Tensor* factors) const {
  const auto v = atoms.index_select(1, table(atoms, kPairJ)) - atoms.index_select(1, table(atoms, kPairI));
  const auto d = v.square().sum(-1).sqrt().unsqueeze(-1);  // B × pairs × 1
  const auto centred = d - table(atoms, kRadialShifts);
  const auto gauss = torch::exp(centred.square() * -spec_.radial_eta);
  const auto fc = cutoff(d, spec_.radial_cutoff);
  if (factors != nullptr) {
    const auto slopes = gauss * 0.25 * (cutoff_slope(d, spec_.radial_cutoff) - centred * (2 * spec_.radial_eta) * fc);
    *factors = torch::cat({v / d, slopes}, -1);
  }
  return gauss * 0.25 * fc;
}

torch::Tensor AtomCenteredFeatures::triplet_terms(const torch::Tensor& atoms, torch::Tensor* factors) const {
  const auto centre = atoms.index_select(1, table(atoms, kTripletI));
  const auto vj = atoms.index_select(1, table(atoms, kTripletJ)) - centre;  // B × triplets × 3
  const auto vk = atoms.index_select(1, table(atoms, kTripletK)) - centre;
  const auto dj = vj.square().sum(-1).sqrt(), dk = vk.square().sum(-1).sqrt();
  const auto cosine = ((vj * vk).sum(-1) / torch::clamp(dj * dk, kDistanceProductFloor)).unsqueeze(-1);
  const auto turned = torch::acos(cosine * kCosineFactor) - table(atoms, kAngleShifts);  // θ − θ_z
  const auto half = (torch::cos(turned) + 1) * 0.5;
  const auto angle = torch::pow(half, spec_.zeta);  // K_Z
  const auto centred = ((dj + dk) * 0.5).unsqueeze(-1) - table(atoms, kAngularShifts);
  const auto radius = torch::exp(centred.square() * -spec_.angular_eta);  // K_A
  const double rc = spec_.angular_cutoff;
  const auto fcj = cutoff(dj, rc), fck = cutoff(dk, rc);
  const auto fc = (fcj * fck).unsqueeze(-1).unsqueeze(-1);
  if (factors != nullptr) {
    const auto dtheta_dc = (1 - (cosine * kCosineFactor).square()).rsqrt() * -kCosineFactor;
    const auto angle_slope = torch::pow(half, spec_.zeta - 1) * torch::sin(turned) * (-0.5 * spec_.zeta) * dtheta_dc;
    const auto radius_slope = radius * centred * (-2 * spec_.angular_eta);
    const auto fj = (cutoff_slope(dj, rc) * fck).unsqueeze(-1), fk = (fcj * cutoff_slope(dk, rc)).unsqueeze(-1);
    const auto dj1 = dj.unsqueeze(-1), dk1 = dk.unsqueeze(-1);
    *factors = torch::cat(
        {vj / dj1, vk / dk1, cosine, dj1, dk1, fc.squeeze(-1), fj, fk, angle, angle_slope, radius, radius_slope}, -1);
  }
  return (radius.unsqueeze(-1) * angle.unsqueeze(-2) * fc * 2).flatten(-2);  // B × triplets × K_A·K_Z
}

torch::Tensor AtomCenteredFeatures::phi(const torch::Tensor& x) const {
  const auto atoms = x.reshape({x.size(0), atoms_, 3});
  return torch::cat({radial_sum(pair_terms(atoms, nullptr)), angular_sum(triplet_terms(atoms, nullptr))}, -1)
      .reshape({x.size(0), -1});
}

FeatureRows AtomCenteredFeatures::at(const torch::Tensor& x) const {
  if (on_kernels(x)) return kernel_at(x);
  const auto atoms = x.reshape({x.size(0), atoms_, 3});
  FeatureRows rows;
  const auto radial_terms = pair_terms(atoms, &rows.first);
  const auto angular_terms = triplet_terms(atoms, &rows.second);
  rows.phi = torch::cat({radial_sum(radial_terms), angular_sum(angular_terms)}, -1).reshape({x.size(0), -1});
  return rows;
}

// Jᵀ g for one model's g (B × m): each pair's and triplet's terms' slopes, contracted with g at the terms' places,
// give the derivatives by R_ij, R_ik and c; their gradients by the vectors from atom i add into the atoms' rows.
torch::Tensor AtomCenteredFeatures::transpose_one(const FeatureRows& rows, const torch::Tensor& g) const {
  if (on_kernels(g)) return kernel_transpose(rows, g);
  const int64_t b = g.size(0), elements = static_cast<int64_t>(layout_.elements.size());
  const int64_t kr = spec_.radial_divisions, ka = spec_.angular_divisions, kz = spec_.angle_sections;
  const int64_t radial_width = elements * kr;
  const auto per_atom = g.view({b, atoms_, layout_.width});
  auto out = torch::zeros({b, atoms_, 3}, g.options());
  // Pairs: ∂/∂x_j = e Σ_k g_k ∂t_k/∂R, and its negative on x_i.
  const auto g_pairs =
      per_atom.narrow(2, 0, radial_width).reshape({b, atoms_ * elements, kr}).index_select(1, table(g, kRadialSlot));
  const auto on_j = rows.first.narrow(-1, 0, 3) * (g_pairs * rows.first.narrow(-1, 3, kr)).sum(-1, true);
  out.index_add_(1, table(g, kPairJ), on_j).index_add_(1, table(g, kPairI), -on_j);
  // Triplets: with q = Σ g Q A, q' = Σ g Q' A, q_c = Σ g Q A' (all times 2F's other factors below),
  // s_j = ∂/∂R_ij = q' F + 2 q F_j, s_k likewise, s_c = ∂/∂c = 2 F q_c, and ∂c/∂v_j = (e_k − c e_j) / R_ij.
  const auto t = unpack_triplets(rows.second, kz, ka);
  const auto g_triplets = per_atom.narrow(2, radial_width, layout_.width - radial_width)
                              .reshape({b, atoms_ * pairs_of_elements_, ka, kz})
                              .index_select(1, table(g, kAngularSlot));         // B × triplets × K_A × K_Z
  const auto g_a = torch::matmul(g_triplets, t.a.unsqueeze(-1)).squeeze(-1);    // Σ_z g A_z: B × triplets × K_A
  const auto g_da = torch::matmul(g_triplets, t.da.unsqueeze(-1)).squeeze(-1);  // Σ_z g A'_z
  const auto q = (g_a * t.q).sum(-1, true), dq = (g_a * t.dq).sum(-1, true), qc = (g_da * t.q).sum(-1, true);
  const auto s_j = dq * t.f + q * t.fj * 2, s_k = dq * t.f + q * t.fk * 2, s_c = qc * t.f * 2;
  const auto on_vj = t.ej * (s_j - s_c * t.c / t.dj) + t.ek * (s_c / t.dj);
  const auto on_vk = t.ek * (s_k - s_c * t.c / t.dk) + t.ej * (s_c / t.dk);
  out.index_add_(1, table(g, kTripletJ), on_vj).index_add_(1, table(g, kTripletK), on_vk);
  out.index_add_(1, table(g, kTripletI), -(on_vj + on_vk));
  return out.view({b, -1});
}

// J r for one model's r (B × n): each pair's and triplet's change of R_ij, R_ik and c along r, times the terms'
// slopes, summed at the terms' places.
torch::Tensor AtomCenteredFeatures::times_one(const FeatureRows& rows, const torch::Tensor& r) const {
  if (on_kernels(r)) return kernel_times(rows, r);
  const int64_t b = r.size(0), kr = spec_.radial_divisions, ka = spec_.angular_divisions, kz = spec_.angle_sections;
  const auto moves = r.view({b, atoms_, 3});
  const auto along = [&](Table to, Table from) {
    return moves.index_select(1, table(r, to)) - moves.index_select(1, table(r, from));
  };
  const auto d_pair = (rows.first.narrow(-1, 0, 3) * along(kPairJ, kPairI)).sum(-1, true);
  const auto radial_part = radial_sum(rows.first.narrow(-1, 3, kr) * d_pair);
  const auto t = unpack_triplets(rows.second, kz, ka);
  const auto vj = along(kTripletJ, kTripletI), vk = along(kTripletK, kTripletI);
  const auto d_dj = (t.ej * vj).sum(-1, true), d_dk = (t.ek * vk).sum(-1, true);
  const auto d_c = ((t.ek - t.c * t.ej) * vj).sum(-1, true) / t.dj + ((t.ej - t.c * t.ek) * vk).sum(-1, true) / t.dk;
  // δT_az = Q'_a A_z F (δR_ij + δR_ik) + Q_a (A_z 2 (F_j δR_ij + F_k δR_ik) + A'_z 2 F δc).
  const auto by_mean = t.a * (t.f * (d_dj + d_dk));
  const auto by_rest = t.a * ((t.fj * d_dj + t.fk * d_dk) * 2) + t.da * (t.f * d_c * 2);
  const auto terms = t.dq.unsqueeze(-1) * by_mean.unsqueeze(-2) + t.q.unsqueeze(-1) * by_rest.unsqueeze(-2);
  return torch::cat({radial_part, angular_sum(terms.flatten(-2))}, -1).reshape({b, -1});
}

torch::Tensor AtomCenteredFeatures::transpose_times(const FeatureRows& rows, const torch::Tensor& g) const {
  if (g.dim() == 2) return transpose_one(rows, g);
  std::vector<torch::Tensor> out;
  for (int64_t r = 0; r < g.size(0); ++r) out.push_back(transpose_one(rows, g[r]));
  return torch::stack(out);
}

torch::Tensor AtomCenteredFeatures::times(const FeatureRows& rows, const torch::Tensor& r) const {
  if (r.dim() == 2) return times_one(rows, r);
  std::vector<torch::Tensor> out;
  for (int64_t m = 0; m < r.size(0); ++m) out.push_back(times_one(rows, r[m]));
  return torch::stack(out);
}

double AtomCenteredFeatures::elements_per_row() const {
  const double a = static_cast<double>(atoms_), pairs = a * (a - 1), triplets = a * (a - 1) * (a - 2) / 2;
  const double radial_terms = pairs * static_cast<double>(spec_.radial_divisions);
  const double angular_terms = triplets * static_cast<double>(spec_.angular_divisions * spec_.angle_sections);
  // The factors J keeps, and the work tensors of one product by J or Jᵀ (about four of each term).
  const double factors =
      pairs * static_cast<double>(3 + spec_.radial_divisions) +
      triplets * static_cast<double>(kTripletScalars + 2 * spec_.angle_sections + 2 * spec_.angular_divisions);
  return factors + 4 * (radial_terms + angular_terms) + 2 * static_cast<double>(dim()) + 2 * double(input_dim());
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
  throw std::logic_error("model.features atom_centered: the export writes a module of its own (export_atoms.cpp)");
}

NamedTensors AtomCenteredFeatures::script_buffers(torch::Dtype dtype) const {
  const auto& t = tables_.cpu();
  const auto elements = static_cast<int64_t>(layout_.elements.size());
  std::vector<int64_t> pairs;
  for (int64_t s = 0; s < elements; ++s)
    for (int64_t u = 0; u < elements; ++u) pairs.push_back(pair_index(s, u, elements));
  return {{"radial_shifts", t[kRadialShifts].to(dtype)},
          {"angular_shifts", t[kAngularShifts].to(dtype)},
          {"angle_shifts", t[kAngleShifts].to(dtype)},
          {"pair_of_elements", torch::tensor(pairs, torch::kInt64)}};
}

}  // namespace gradfit::model
