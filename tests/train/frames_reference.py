"""The frames layout (scripts/ase_import.py --layout frames: frames of any atoms, with or without a periodic cell) in
PyTorch, written out independently of gradfit_dist's C++, for pytorch_reference.py's replay of runs on such data.

Elements: the distinct atomic numbers of all frames of the file, ascending; one network per element
(atom_centered_reference.ElementNetworks, built as for the fixed layout).

Descriptor of a frame: atom_centered_reference's terms (the same functions), each atom i's neighbours being the
periodic images j + n.H (H: the cell's rows, n integer, 0 along a direction that is not periodic) within the larger
cutoff, i itself at n = 0 excepted; an atom's own images and several images of one atom count as neighbours of their
own; the angular terms run over the unordered pairs of distinct neighbour images. The images are found by brute force
in numpy, once per frame (the positions are data: they do not change in training); the terms are computed in torch
from the positions, n.H a constant, so that autograd gives dV/dx exactly. Without a periodic direction it is the
molecule's descriptor, atom_centered_reference.AtomCentered.

Energy of a frame: V_f = sum over its atoms i of NN_{Z_i}(G_i). A batch of B frames (gradfit_dist's mini-batches
of frames, tests/train/batch_order.py, or all N frames) has the loss
    sum over its atoms and components of l(dV/dx - S) / (B nbar)  +  value_weight sum_f ((V_f - E'_f) / a_f)^2 / B
with l(r) = r^2 (mse) or nn.HuberLoss(delta)'s elementwise term (huber), nbar = 3 A / N (A: the atoms of all
frames), a_f the frame's atoms, E'_f = E_f - sum_Z n_{f,Z} b_Z, b the least-norm least-squares fit (numpy's lstsq) of
E_f = sum_Z n_{f,Z} b_Z over all frames; the value term only where the file has values and value_weight > 0.
An element without atoms in a batch still runs its network (on no rows): its weights get a zero gradient, not
None, so the optimizers step them as any other (Adam's moments decay; only a parameter that no loss reaches, the
output biases without a value term, keeps None and is skipped).
"""
import itertools

import h5py
import numpy as np
import torch

import atom_centered_reference as ac


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


class FrameSet:
    """A frames-layout data file, float64: per atom positions, grad (A x 3) and numbers; per frame its atom count,
    cell (3 x 3, rows a, b, c), pbc (3 booleans) and value (None without the dataset)."""

    def __init__(self, path):
        with h5py.File(path, "r") as f:
            assert text(f.attrs["layout"]) == "frames", f"{path}: not the frames layout"
            assert "weight" not in f, "the frames layout: without row weights"
            self.positions = np.asarray(f["positions"][:], dtype=np.float64)
            self.grad = np.asarray(f["grad"][:], dtype=np.float64)
            self.numbers = np.asarray(f["numbers"][:], dtype=np.int64)
            self.atoms = np.asarray(f["atoms"][:], dtype=np.int64)
            self.cells = np.asarray(f["cell"][:], dtype=np.float64).reshape(-1, 3, 3)
            self.pbc = np.asarray(f["pbc"][:]).reshape(-1, 3) != 0
            self.values = np.asarray(f["value"][:], dtype=np.float64).reshape(-1) if "value" in f else None
        self.first = np.concatenate([[0], np.cumsum(self.atoms)])
        assert self.first[-1] == len(self.numbers) == len(self.positions) == len(self.grad)
        self.elements = sorted(set(int(z) for z in self.numbers))

    def __len__(self):
        return len(self.atoms)

    def frame(self, f):
        """Frame f's atoms: a slice of the per-atom arrays."""
        return slice(int(self.first[f]), int(self.first[f + 1]))

    def counts(self):
        """n_{f,Z}: per frame its atoms of each element (N x S, float64)."""
        out = np.zeros((len(self), len(self.elements)))
        for f in range(len(self)):
            for z in self.numbers[self.frame(f)]:
                out[f, self.elements.index(int(z))] += 1
        return out

    def element_energies(self):
        """b (per element, ascending atomic number) and E' = E - n b (per frame), as described above."""
        counts = self.counts()
        energies = np.linalg.lstsq(counts, self.values, rcond=None)[0]
        return energies, self.values - counts @ energies


def shift_range(positions, cell, pbc, cutoff):
    """Per direction the image counts n_k to try, -m_k..m_k (0 where not periodic): every image j + n.H within
    `cutoff` of atom i has |n_k| <= cutoff |b_k| + |s_k(r_j) - s_k(r_i)|, s_k = r . b_k the fractional coordinate along
    the periodic direction k, b_k its dual vector in the span of the periodic vectors (numpy's pseudo-inverse); m_k
    adds 1 to that bound's ceiling."""
    reach = np.zeros(3, dtype=np.int64)
    periodic = np.flatnonzero(pbc)
    if periodic.size:
        dual = np.linalg.pinv(cell[periodic])  # 3 x p: b_k . h_l = delta_kl over the periodic k, l
        s = positions @ dual
        bound = cutoff * np.linalg.norm(dual, axis=0) + (s.max(0) - s.min(0))
        reach[periodic] = np.ceil(bound).astype(np.int64) + 1
    return reach


def images(positions, cell, pbc, cutoff):
    """Every (i, j, n) with |r_j + n.H - r_i| < cutoff, i != j or n != 0, by brute force; sorted by i, then j, then n
    (lexicographically): i, j (P) and n (P x 3, integers)."""
    reach = shift_range(positions, cell, pbc, cutoff)
    shifts = np.array(list(itertools.product(*[range(-m, m + 1) for m in reach])), dtype=np.int64)
    offsets = shifts.astype(np.float64) @ cell  # zero rows of n along the directions that are not periodic
    v = positions[None, :, None, :] + offsets[None, None, :, :] - positions[:, None, None, :]
    near = (v ** 2).sum(-1) < cutoff ** 2
    a = len(positions)
    near[np.arange(a), np.arange(a), np.flatnonzero((shifts == 0).all(1))[0]] = False
    i, j, m = np.nonzero(near)  # C order: sorted by i, j, then n
    return i, j, shifts[m]


class Topology:
    """The neighbour images of a frame's atoms, or of a batch of frames (concatenated, indices offset): per pair
    (atom i, image of j) the constant n.H and j's species; per triplet (atom i, pair p, pair q, p < q among i's
    pairs within the angular cutoff) the slot of the element pair; per atom its species and frame."""

    def __init__(self, i, j, offsets, j_species, tri_i, tri_p, tri_q, tri_slot, species, frame_of, frames):
        self.i, self.j, self.offsets, self.j_species = i, j, offsets, j_species
        self.tri_i, self.tri_p, self.tri_q, self.tri_slot = tri_i, tri_p, tri_q, tri_slot
        self.species, self.frame_of, self.frames = species, frame_of, frames

    @staticmethod
    def join(parts):
        """The topology of frames `parts` (each a Topology of one frame) as one batch, as torch index tensors."""
        atoms = np.cumsum([0] + [len(t.species) for t in parts])
        pairs = np.cumsum([0] + [len(t.i) for t in parts])

        def cat(name, shift=None):
            return np.concatenate([getattr(t, name) + (0 if shift is None else shift[k]) for k, t in enumerate(parts)])

        frame_of = np.concatenate([np.full(len(t.species), k) for k, t in enumerate(parts)])
        index = {name: torch.from_numpy(cat(name, atoms).astype(np.int64)) for name in ("i", "j", "tri_i")}
        index.update({name: torch.from_numpy(cat(name, pairs).astype(np.int64)) for name in ("tri_p", "tri_q")})
        index.update({name: torch.from_numpy(cat(name).astype(np.int64))
                      for name in ("j_species", "tri_slot", "species")})
        return Topology(index["i"], index["j"], torch.from_numpy(cat("offsets").reshape(-1, 3)), index["j_species"],
                        index["tri_i"], index["tri_p"], index["tri_q"], index["tri_slot"], index["species"],
                        torch.from_numpy(frame_of.astype(np.int64)), len(parts))


class FramesDescriptor(ac.Terms):
    """(positions A x 3, Topology) -> the atoms' descriptors, A x w: atom_centered_reference's terms over the
    neighbour images, for the ascending `elements` of the data."""

    def __init__(self, attrs, elements):
        super().__init__(attrs, elements)
        s = len(self.elements)
        self.slot = np.zeros((s, s), dtype=np.int64)  # the element pair's index among self.pairs, either order
        for k, (a, b) in enumerate(self.pairs):
            self.slot[a, b] = self.slot[b, a] = k

    def topology(self, positions, numbers, cell, pbc):
        """One frame's Topology (numpy arrays): the images within the larger cutoff, and the triplets of each atom's
        images within the angular cutoff."""
        species = np.array([self.elements.index(int(z)) for z in numbers], dtype=np.int64)
        rc, ra = self.p["radial_cutoff"], self.p["angular_cutoff"]
        i, j, n = images(positions, cell, pbc, max(rc, ra))
        offsets = n.astype(np.float64) @ cell
        d = np.linalg.norm(positions[j] + offsets - positions[i], axis=1)
        tri = []
        for atom in range(len(numbers)):
            close = [p for p in np.flatnonzero(i == atom) if d[p] < ra]
            tri += [(atom, p, q) for a, p in enumerate(close) for q in close[a + 1:]]
        tri = np.array(tri, dtype=np.int64).reshape(-1, 3)
        tri_slot = self.slot[species[j[tri[:, 1]]], species[j[tri[:, 2]]]]
        return Topology(i, j, offsets, species[j], tri[:, 0], tri[:, 1], tri[:, 2], tri_slot, species,
                        np.zeros(len(numbers), dtype=np.int64), 1)

    def forward(self, r, t):
        p, a, s = self.p, r.shape[0], len(self.elements)
        v = r.index_select(0, t.j) - r.index_select(0, t.i) + t.offsets.to(r.dtype)
        d = torch.linalg.norm(v, dim=-1)
        rs = torch.tensor(self.rs, dtype=r.dtype)
        radial = ac.radial_term(p, d[:, None], rs)  # pairs x radial_divisions
        g_radial = torch.zeros(a * s, len(self.rs), dtype=r.dtype).index_add(0, t.i * s + t.j_species, radial)
        du, dv = d.index_select(0, t.tri_p), d.index_select(0, t.tri_q)
        angle = ac.angle_of(v.index_select(0, t.tri_p), v.index_select(0, t.tri_q), du, dv)
        fc = ac.cutoff(du, p["angular_cutoff"]) * ac.cutoff(dv, p["angular_cutoff"])
        radius = ac.angular_radius(p, du[:, None], dv[:, None], torch.tensor(self.ra, dtype=r.dtype))
        theta = torch.tensor(self.theta, dtype=r.dtype)
        terms = ac.angular_term(p, angle[:, None, None], theta, radius[:, :, None], fc[:, None, None])
        block = len(self.ra) * len(self.theta)
        g_angular = torch.zeros(a * len(self.pairs), block, dtype=r.dtype).index_add(
            0, t.tri_i * len(self.pairs) + t.tri_slot, terms.reshape(-1, block))
        return torch.cat([g_radial.reshape(a, -1), g_angular.reshape(a, -1)], 1)


class FrameNetworks(ac.ElementNetworks):
    """V_f = sum over frame f's atoms i of NN_{Z_i}(G_i): (positions A x 3, Topology of B frames) -> V (B)."""

    def forward(self, r, t):
        g = self.descriptor(r, t)
        v = torch.zeros(t.frames, dtype=r.dtype)
        for e, network in enumerate(self.networks):
            atoms = torch.nonzero(t.species == e).reshape(-1)  # possibly none: a zero gradient, see above
            v = v.index_add(0, t.frame_of.index_select(0, atoms), network(g.index_select(0, atoms)).reshape(-1))
        return v


class Objective:
    """A run's loss on frames, as described above: called with the model and the batch's frame indices (a tensor;
    None: all frames), it returns the loss (its weight gradient in .grad), dV/dx (detached) and S of the batch's
    atoms. `targets`: S of all atoms; `rows`: the frames."""

    def __init__(self, attrs, data, descriptor, dtype, shifted=None):
        self.data = data
        self.parts = [descriptor.topology(data.positions[data.frame(f)], data.numbers[data.frame(f)],
                                          data.cells[f], data.pbc[f]) for f in range(len(data))]
        self.positions = torch.from_numpy(data.positions).to(dtype)
        self.targets = torch.from_numpy(data.grad).to(dtype)
        self.rows = len(data)
        self.nbar = 3 * len(data.numbers) / len(data)
        if text(attrs["loss"]) == "huber":
            self.fn = torch.nn.HuberLoss(delta=float(attrs["huber_delta"]), reduction="none")
        else:
            self.fn = torch.nn.MSELoss(reduction="none")
        self.value_weight = float(attrs["value_weight"]) if shifted is not None else 0.0
        self.shifted = None if shifted is None else torch.from_numpy(shifted)
        self.atoms = torch.from_numpy(data.atoms)
        self.batches = {}

    def batch(self, frames):
        """The frames' Topology and the index of their atoms, made once per set of frames."""
        key = tuple(frames)
        if key not in self.batches:
            atoms = np.concatenate([np.arange(self.data.first[f], self.data.first[f + 1]) for f in frames])
            self.batches[key] = Topology.join([self.parts[f] for f in frames]), torch.from_numpy(atoms)
        return self.batches[key]

    def __call__(self, model, index=None):
        frames = list(range(self.rows)) if index is None else [int(f) for f in index]
        topology, atoms = self.batch(frames)
        r = self.positions.index_select(0, atoms).requires_grad_(True)
        targets = self.targets.index_select(0, atoms)
        v = model(r, topology)
        (dvdx,) = torch.autograd.grad(v.sum(), r, create_graph=True)
        loss = self.fn(dvdx, targets).sum() / (len(frames) * self.nbar)
        if self.value_weight > 0:
            rows = torch.tensor(frames)
            residual = (v - self.shifted.index_select(0, rows).to(v.dtype)) / self.atoms.index_select(0, rows)
            loss = loss + self.value_weight * (residual ** 2).sum() / len(frames)
        loss.backward()
        return loss, dvdx.detach(), targets
