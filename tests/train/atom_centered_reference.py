"""model.features atom_centered in PyTorch, written out independently of gradfit_dist's C++: the ANI descriptor
(TorchANI's AEV) of each atom, computed atom by atom over its neighbours, and one network per element summed over
the atoms. pytorch_reference.py builds it from a run's attributes.

Per atom i, for the S distinct elements of `numbers` in ascending atomic number:
  radial   G[s, r]      = sum over j != i of element s:  1/4 exp(-radial_eta (R_ij - Rs_r)^2) fc(R_ij, radial_cutoff)
  angular  G[(s,t), a, z] = sum over unordered pairs {j, k} (j, k != i) of elements {s, t}:
           2 ((1 + cos(theta_ijk - theta_z)) / 2)^zeta exp(-angular_eta ((R_ij + R_ik)/2 - Ra_a)^2)
           fc(R_ij, angular_cutoff) fc(R_ik, angular_cutoff),   theta_ijk = acos(0.95 cos(angle jik))
with fc(R, Rc) = cos(pi R / Rc) / 2 + 1/2 for R < Rc, else 0; Rs = linspace(radial_start, radial_cutoff,
radial_divisions + 1)[:-1], Ra likewise, theta_z = (z + 1/2) pi / angle_sections; the pairs (s, t), s <= t, in
row-major order; the descriptor is [radial (S x radial_divisions), angular (S(S+1)/2 x angular_divisions x
angle_sections)], atom after atom. Terms holds the parameters and the layout, and radial_term, angle_of,
angular_radius and angular_term the formulas, which frames_reference.py applies to frames with periodic images.
"""
import math

import torch

KEYS_REAL = ("radial_cutoff", "angular_cutoff", "radial_eta", "angular_eta", "zeta", "radial_start", "angular_start")
KEYS_COUNT = ("radial_divisions", "angular_divisions", "angle_sections")


def cutoff(d, rc):
    return torch.where(d < rc, 0.5 * torch.cos(math.pi * d / rc) + 0.5, torch.zeros_like(d))


class Terms(torch.nn.Module):
    """The descriptor's parameters (a run's attributes) and its layout for the ascending atomic numbers `elements`:
    the shifts Rs, Ra and theta_z, the element pairs (s, t), s <= t, in row-major order, and the width w per atom."""

    def __init__(self, attrs, elements):
        super().__init__()
        self.p = {k: float(attrs[k]) for k in KEYS_REAL}
        self.p.update({k: int(attrs[k]) for k in KEYS_COUNT})
        self.elements = list(elements)
        p = self.p
        self.rs = [p["radial_start"] + r * (p["radial_cutoff"] - p["radial_start"]) / p["radial_divisions"]
                   for r in range(p["radial_divisions"])]
        self.ra = [p["angular_start"] + a * (p["angular_cutoff"] - p["angular_start"]) / p["angular_divisions"]
                   for a in range(p["angular_divisions"])]
        self.theta = [(z + 0.5) * math.pi / p["angle_sections"] for z in range(p["angle_sections"])]
        s = len(self.elements)
        self.pairs = [(a, b) for a in range(s) for b in range(a, s)]
        self.width = s * len(self.rs) + len(self.pairs) * len(self.ra) * len(self.theta)


def radial_term(p, d, shift):
    """A radial term of a neighbour at distance d: 1/4 exp(-radial_eta (d - Rs)^2) fc(d, radial_cutoff)."""
    return 0.25 * torch.exp(-p["radial_eta"] * (d - shift) ** 2) * cutoff(d, p["radial_cutoff"])


def angle_of(u, v, du, dv):
    """theta_ijk = acos(0.95 cos(angle between u and v)), u and v of lengths du and dv."""
    cos = (u * v).sum(-1) / torch.clamp(du * dv, min=1e-10)
    return torch.acos(0.95 * cos)


def angular_radius(p, du, dv, shift):
    """exp(-angular_eta ((du + dv)/2 - Ra)^2)."""
    return torch.exp(-p["angular_eta"] * ((du + dv) / 2 - shift) ** 2)


def angular_term(p, angle, theta, radius, fc):
    """2 ((1 + cos(angle - theta_z)) / 2)^zeta times the radius factor and the cutoffs' product fc."""
    return 2 * ((1 + torch.cos(angle - theta)) / 2) ** p["zeta"] * radius * fc


class AtomCentered(Terms):
    """x (B x 3a) -> the atoms' descriptors, B x a x w."""

    def __init__(self, attrs, numbers):
        super().__init__(attrs, sorted(set(int(z) for z in numbers)))
        self.numbers = [int(z) for z in numbers]
        self.species = [self.elements.index(z) for z in self.numbers]

    def atom(self, r, i):
        """Atom i's descriptor from positions r (B x a x 3): B x w."""
        p, a = self.p, len(self.numbers)
        radial = [[0.0] * len(self.rs) for _ in self.elements]
        angular = {pair: [[0.0] * len(self.theta) for _ in self.ra] for pair in self.pairs}
        for j in range(a):
            if j == i:
                continue
            dij = torch.linalg.norm(r[:, j] - r[:, i], dim=-1)
            for n, shift in enumerate(self.rs):
                radial[self.species[j]][n] = radial[self.species[j]][n] + radial_term(p, dij, shift)
            for k in range(j + 1, a):
                if k == i:
                    continue
                u, v = r[:, j] - r[:, i], r[:, k] - r[:, i]
                dik = torch.linalg.norm(v, dim=-1)
                angle = angle_of(u, v, dij, dik)
                fc = cutoff(dij, p["angular_cutoff"]) * cutoff(dik, p["angular_cutoff"])
                pair = tuple(sorted((self.species[j], self.species[k])))
                for n, shift in enumerate(self.ra):
                    radius = angular_radius(p, dij, dik, shift)
                    for z, theta in enumerate(self.theta):
                        term = angular_term(p, angle, theta, radius, fc)
                        angular[pair][n][z] = angular[pair][n][z] + term
        rows = r.shape[0]
        values = [t for per in radial for t in per]
        values += [t for pair in self.pairs for per in angular[pair] for t in per]
        return torch.stack([t if torch.is_tensor(t) else torch.zeros(rows, dtype=r.dtype) for t in values], -1)

    def forward(self, x):
        r = x.reshape(x.shape[0], -1, 3)
        return torch.stack([self.atom(r, i) for i in range(len(self.numbers))], 1)


class ElementNetworks(torch.nn.Module):
    """V = sum over atoms i of NN_{Z_i}(G_i): per element (ascending atomic number) nn.Linear layers w -> widths...
    -> 1 with the activation between them, made in that order after torch.manual_seed (as gradfit_dist);
    element_widths (atomic number -> widths) overrides widths for the elements it names."""

    def __init__(self, descriptor, widths, activation, element_widths=None):
        super().__init__()
        self.descriptor = descriptor
        self.networks = torch.nn.ModuleList()
        for z in descriptor.elements:
            sizes = [descriptor.width] + list((element_widths or {}).get(z, widths))
            layers = []
            for i in range(len(sizes) - 1):
                layers += [torch.nn.Linear(sizes[i], sizes[i + 1]), activation()]
            layers.append(torch.nn.Linear(sizes[-1], 1))
            self.networks.append(torch.nn.Sequential(*layers))

    def forward(self, x):
        g = self.descriptor(x)
        v = torch.zeros(x.shape[0], 1, dtype=x.dtype)
        for e, network in enumerate(self.networks):
            atoms = [i for i, s in enumerate(self.descriptor.species) if s == e]
            rows = g[:, atoms].reshape(-1, g.shape[-1])
            v = v + network(rows).reshape(x.shape[0], len(atoms)).sum(1, keepdim=True)
        return v

    def named_weights(self, symbols):
        """The final weights by gradfit_dist's names: "H.0.weight", ... (the element's symbol, its i-th layer)."""
        out = {}
        for z, network in zip(self.descriptor.elements, self.networks):
            linears = [m for m in network if isinstance(m, torch.nn.Linear)]
            for i, layer in enumerate(linears):
                out[f"{symbols[z]}.{i}.weight"] = layer.weight.detach().double().numpy()
                out[f"{symbols[z]}.{i}.bias"] = layer.bias.detach().double().numpy()
        return out
