// The TorchScript module of a run of model.features atom_centered (inference/export.h): the energy of any structure
// of the trained elements, a molecule or atoms in a cell with periodic directions, its descriptor built from the
// atoms' periodic images at each call, the per-element networks and the element energies; dE/dx and the virial by
// autograd.
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

// A call's structure: positions r (B × a × 3, in the model's dtype and on its device), cells h (B × 3 × 3, rows the
// lattice vectors) and periodic (B × 3, bool), from x (B × 3a or B × a × 3), cell (None, 3 × 3 or B × 3 × 3) and pbc
// (None: every direction periodic where there is a cell; 3 or B × 3 booleans).
constexpr const char* kStructureCode = R"PY(
def structure(self, x: Tensor, atoms: int, cell: Optional[Tensor],
              pbc: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    b = x.size(0)
    assert x.numel() == 3 * atoms * b, ("x of shape " + str(x.size()) + ": B x 3a coordinates (or B x a x 3) for the " +
                                        str(atoms) + " atoms of numbers")
    r = x.to(self.radial_shifts.device, self.radial_shifts.dtype).reshape(b, atoms, 3)
    bad = ~torch.isfinite(r).all(2)
    if bool(bad.any()):
        at = torch.nonzero(bad)[0]
        assert False, ("frame " + str(int(at[0])) + ", atom " + str(int(at[1])) + ": a position that is not finite")
    if cell is None:
        assert pbc is None or not bool((pbc != 0).any()), "pbc has a periodic direction, but there is no cell"
        return r, torch.zeros([b, 3, 3], dtype=r.dtype, device=r.device), torch.zeros([b, 3], device=r.device) != 0
    assert cell.size() == [3, 3] or cell.size() == [b, 3, 3], ("cell of shape " + str(cell.size()) +
                                                               ": 3 x 3 (rows: the lattice vectors) or B x 3 x 3 " +
                                                               "for the B = " + str(b) + " frames of x")
    h = cell.to(r.device, r.dtype).reshape(-1, 3, 3).expand(b, 3, 3)
    if pbc is None:
        return r, h, torch.ones([b, 3], device=r.device) != 0
    assert pbc.size() == [3] or pbc.size() == [b, 3], ("pbc of shape " + str(pbc.size()) + ": 3 booleans or B x 3")
    return r, h, (pbc.to(r.device) != 0).reshape(-1, 3).expand(b, 3)
)PY";

// The images of a structure: every (frame f, atom i, atom j, shift n) with |r_j + n·h − r_i| below the larger cutoff,
// i ≠ j or n ≠ 0, n = 0 along the directions that are not periodic: P × 6 (int64: f, i, j, n_a, n_b, n_c), sorted
// by f, i, j, n. By brute force, on the atoms wrapped into the cell along its periodic directions (r = r' + k·h,
// k integer (wraps), the fractional coordinates s_k = r' · b_k in [0, 1), b_k the dual vector of h_k in the span of the
// periodic vectors: a column of the masked cell's pseudo-inverse), over the shifts |n'_k| ≤ m_k = ⌈cutoff |b_k| + the
// spread of s_k⌉ (an image within the cutoff has |s_k(r'_j + n'·h − r'_i)| < cutoff |b_k|: tests/train/
// frames_reference.py's bound), in blocks of about 2²⁰ candidate pairs (B × a² per shift); then n = n' + k_i − k_j.
// The search reads the positions as they are: which images are near is a constant of the derivatives.
constexpr const char* kImagesCode = R"PY(
def images(self, r: Tensor, h: Tensor, periodic: Tensor) -> Tensor:
    r, h = r.detach(), h.detach()
    b, a = r.size(0), r.size(1)
    reach = max(self.radial_cutoff, self.angular_cutoff)
    on = periodic.to(r.dtype)
    lattice = h * on.unsqueeze(2)
    gram = torch.matmul(lattice, lattice.transpose(1, 2)) + torch.diag_embed(1.0 - on)
    lengths = torch.where(periodic, (lattice * lattice).sum(2), torch.ones_like(on)).prod(1)
    flat = ~(torch.det(gram) > 1e-24 * lengths)
    if bool(flat.any()):
        frame = int(torch.nonzero(flat)[0, 0])
        assert False, ("frame " + str(frame) + ": the cell's periodic lattice vectors span no volume (a zero " +
                       "vector, or vectors along one line or in one plane)")
    dual = torch.pinverse(lattice)
    s = torch.matmul(r, dual)
    wraps = torch.floor(s) * on.unsqueeze(1)
    r = r - torch.matmul(wraps, h)
    s = s - wraps
    bound = reach * (dual * dual).sum(1).sqrt() + (s.max(1).values - s.min(1).values)
    m = torch.where(periodic, torch.ceil(bound).long(), torch.zeros_like(bound).long())
    top = m.max(0).values
    w0, w1, w2 = 2 * int(top[0]) + 1, 2 * int(top[1]) + 1, 2 * int(top[2]) + 1
    count = w0 * w1 * w2
    k = torch.arange(count, device=r.device)
    n = torch.stack([k // (w1 * w2), (k // w2) % w1, k % w2], 1) - top.unsqueeze(0)
    allowed = (n.abs().unsqueeze(0) <= m.unsqueeze(1)).all(2)
    offsets = torch.matmul(n.to(r.dtype), h)
    u = (r.unsqueeze(1) - r.unsqueeze(2)).reshape(b, a * a, 3)
    uu = (u * u).sum(2).reshape(b, a, a, 1)
    itself = torch.eye(a, device=r.device).reshape(1, a, a, 1) != 0
    block = max(1, 1048576 // max(1, b * a * a))
    found: List[Tensor] = []
    for first in range(0, count, block):
        last = min(count, first + block)
        o = offsets[:, first:last]
        oo = (o * o).sum(2).reshape(b, 1, 1, last - first)
        d2 = uu + 2 * torch.matmul(u, o.transpose(1, 2)).reshape(b, a, a, last - first) + oo
        near = (d2 < reach * reach) & allowed[:, first:last].reshape(b, 1, 1, last - first)
        t = torch.arange(first, last, device=r.device)
        near = near & ~(itself & (t == count // 2).reshape(1, 1, 1, last - first))
        at = torch.nonzero(near)
        shift = at[:, 3] + first
        found.append(torch.cat([at[:, :3], n.index_select(0, shift), shift.unsqueeze(1)], 1))
    pairs = torch.cat(found, 0)
    key = ((pairs[:, 0] * a + pairs[:, 1]) * a + pairs[:, 2]) * count + pairs[:, 6]
    pairs = pairs.index_select(0, torch.argsort(key))
    wraps = wraps.long().reshape(b * a, 3)
    f = pairs[:, 0] * a
    moved = pairs[:, 3:6] + wraps.index_select(0, f + pairs[:, 1]) - wraps.index_select(0, f + pairs[:, 2])
    return torch.cat([pairs[:, :3], moved], 1)
)PY";

// The descriptor of B frames of a atoms (r: B × a × 3, cells h: B × 3 × 3) of elements `species` over their
// images (kImagesCode's): B × a × w, TorchANI's AEV, every image j + n·h of an atom i within the cutoffs and every
// unordered pair of i's images within the angular cutoff (as model/frame_descriptor.h, by its operations). The
// vectors r_j + n·h − r_i are functions of r and h, so autograd through them gives dE/dx and, with r and h strained,
// the virial.
constexpr const char* kDescriptorCode = R"PY(
def descriptor(self, r: Tensor, h: Tensor, species: Tensor, pairs: Tensor) -> Tensor:
    b, a, s = r.size(0), r.size(1), self.elements.size(0)
    f, i, j = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    at, to = f * a + i, f * a + j
    flat = r.reshape(b * a, 3)
    shift = (pairs[:, 3:].to(r.dtype).unsqueeze(2) * h.index_select(0, f)).sum(1)
    vectors = flat.index_select(0, to) - flat.index_select(0, at) + shift
    d = self.distance(vectors)
    fr = self.cutoff(d, self.radial_cutoff).unsqueeze(-1)
    radial = 0.25 * torch.exp(-self.radial_eta * (d.unsqueeze(-1) - self.radial_shifts) ** 2) * fr
    kr = self.radial_shifts.size(0)
    sj = species.index_select(0, j)
    g_radial = torch.zeros([b * a * s, kr], dtype=r.dtype, device=r.device).index_add_(0, at * s + sj, radial)
    close = torch.nonzero(d.detach() < self.angular_cutoff).squeeze(1)
    centre = at.index_select(0, close)
    q = close.size(0)
    ends = torch.bincount(centre, minlength=b * a).cumsum(0).index_select(0, centre)
    later = ends - torch.arange(q, device=r.device) - 1
    tp = torch.arange(q, device=r.device).repeat_interleave(later)
    tq = tp + 1 + torch.arange(tp.size(0), device=r.device) - (later.cumsum(0) - later).repeat_interleave(later)
    tp, tq = close.index_select(0, tp), close.index_select(0, tq)
    u, v = vectors.index_select(0, tp), vectors.index_select(0, tq)
    dij, dik = d.index_select(0, tp), d.index_select(0, tq)
    cosine = (u * v).sum(-1) / torch.clamp(dij * dik, min=1e-10)
    angle = torch.acos(0.95 * cosine)
    fc = self.cutoff(dij, self.angular_cutoff) * self.cutoff(dik, self.angular_cutoff)
    radius = torch.exp(-self.angular_eta * ((dij + dik).unsqueeze(-1) / 2 - self.angular_shifts) ** 2)
    sections = 2 * ((1 + torch.cos(angle.unsqueeze(-1) - self.angle_shifts)) / 2) ** self.zeta
    ka, kz = self.angular_shifts.size(0), self.angle_shifts.size(0)
    terms = (radius.unsqueeze(-1) * sections.unsqueeze(-2) * fc.unsqueeze(-1).unsqueeze(-1)).reshape(-1, ka * kz)
    sk, sl = sj.index_select(0, tp), sj.index_select(0, tq)
    kinds = self.pair_of_elements.index_select(0, torch.minimum(sk, sl) * s + torch.maximum(sk, sl))
    p = s * (s + 1) // 2
    g_angular = torch.zeros([b * a * p, ka * kz], dtype=r.dtype, device=r.device).index_add_(
        0, at.index_select(0, tp) * p + kinds, terms)
    return torch.cat([g_radial.reshape(b, a, s * kr), g_angular.reshape(b, a, p * ka * kz)], 2)
)PY";

// The public methods: forward (E), gradient (dE/dx) and energy_gradient_virial (E, dE/dx, W), each of x, numbers
// and optionally cell and pbc (inference/export.h).
constexpr const char* kMethodsCode = R"PY(
def forward(self, x: Tensor, numbers: Tensor, cell: Optional[Tensor] = None, pbc: Optional[Tensor] = None) -> Tensor:
    species = self.species(numbers)
    r, h, periodic = self.structure(x, species.size(0), cell, pbc)
    return self.energy(r, h, species, self.images(r, h, periodic))

def gradient(self, x: Tensor, numbers: Tensor, cell: Optional[Tensor] = None, pbc: Optional[Tensor] = None) -> Tensor:
    species = self.species(numbers)
    r, h, periodic = self.structure(x, species.size(0), cell, pbc)
    pairs = self.images(r, h, periodic)
    r = r.detach().requires_grad_(True)
    e = self.energy(r, h.detach(), species, pairs)
    g = torch.autograd.grad([e.sum()], [r])[0]
    assert g is not None
    return g.reshape(x.size())

def energy_gradient_virial(self, x: Tensor, numbers: Tensor, cell: Optional[Tensor] = None,
                           pbc: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
    species = self.species(numbers)
    r, h, periodic = self.structure(x, species.size(0), cell, pbc)
    pairs = self.images(r, h, periodic)
    r = r.detach().requires_grad_(True)
    strain = torch.zeros([r.size(0), 3, 3], dtype=r.dtype, device=r.device).requires_grad_(True)
    deform = (torch.eye(3, dtype=r.dtype, device=r.device) + strain).transpose(1, 2)
    e = self.energy(torch.matmul(r, deform), torch.matmul(h.detach(), deform), species, pairs)
    grads = torch.autograd.grad([e.sum()], [r, strain])
    g, w = grads[0], grads[1]
    assert g is not None and w is not None
    return e.detach(), g.reshape(x.size()), w
)PY";

// energy: Σ over each element's atoms of its network, then the element energies Σ_i b_{Z_i} added in float64 (as
// model/standardization.h's user_values).
std::string energy_code(const config::ModelSpec& spec, const std::vector<int64_t>& elements,
                        const model::ActivationFunction& act) {
  std::string code = "\ndef activation(self, z: Tensor) -> Tensor:\n    return " + std::string(act.script_value()) +
                     "\n\ndef energy(self, r: Tensor, cells: Tensor, species: Tensor, pairs: Tensor) -> Tensor:\n"
                     "    g = self.descriptor(r, cells, species, pairs)\n"
                     "    b, w = g.size(0), g.size(2)\n"
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
      "    return (v.double() + energy).to(g.dtype)\n";
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
  module.define(std::string(kSpeciesCode) + kStructureCode + kImagesCode + kDescriptorCode + kMethodsCode +
                energy_code(run.model, elements, model::activation_of(run.model.activation)));
}

}  // namespace gradfit::inference
