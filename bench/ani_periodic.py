#!/usr/bin/env python3
"""The TorchANI peer on the frames layout (scripts/ase_import.py --layout frames: frames of any atoms, periodic
cells): TorchANI's AEVComputer with its periodic images (cell= and pbc=) and ANIModel (one network per element,
summed over the atoms) trained on forces (dE/dx) by double backward, optionally on energies too, with the loss of
gradfit_dist's training on frames, Adam and a cosine schedule to lr/100; then its error on a held-out frames file.

Usage: ani_periodic.py TRAIN.h5 TEST.h5 [--widths 64 64] [--activation silu] [--epochs 50] [--batch 32]
                       [--lr 3e-3] [--value-weight 0] [--threads 2] [--seed 0] [--dtype float32]
                       [--radial-cutoff 5.2] [--angular-cutoff 3.5] [--radial-eta 16] [--angular-eta 8] [--zeta 32]
                       [--radial-start 0.9] [--angular-start 0.9] [--radial-divisions 16] [--angular-divisions 4]
                       [--angle-sections 8] [--train-frames N] [--progress] [--check-aev FRAMES]

The descriptor's options are gradfit_dist's model.* keys of the same names (radial_cutoff, ...), ANI-1x's values by
default as there; the shifts are spread as gradfit_dist and bench/ani_peer.py spread them. For FCC metals such as
experiments/materials' Cu-Ag (nearest neighbours ~2.6 A, second shell ~3.7 A), --radial-cutoff 5.0
--angular-cutoff 3.5 (three radial shells, the angular terms on the first) is the sensible choice; ANI-1x's 5.2 A
reaches the fourth shell's edge. The elements are TRAIN.h5's (ascending atomic number); TEST.h5 may hold no other.

Frames: each frame's atoms (species 0..S-1 by ascending atomic number), its cell and pbc. TorchANI's AEVComputer
takes one cell per call, so a batch's frames are grouped by cell (and pbc): each group is one call, its frames
padded to the group's largest with species -1 (TorchANI's padding), the cell's periodic images found by TorchANI
(compute_shifts). Positions are wrapped into the cell along the periodic directions once, on reading (TorchANI's
shifts assume atoms within the cell; the forces do not change). A frame without a periodic direction is a molecule
(no cell); one periodic along some directions only gets unit vectors orthogonal to the periodic ones in place of
the others (so the cell inverts; no images along them).

Loss of a batch of B frames, as gradfit_dist defines it on frames (tests/train/frames_reference.py):
    sum over its atoms and components of (dE/dx - S)^2 / (B nbar)  +  value_weight sum_f ((E_f - E'_f) / a_f)^2 / B
nbar = 3 x the mean atoms per training frame, a_f the frame's atoms, E'_f = E_f - sum_Z n_{f,Z} b_Z with b each
element's energy, the least-norm least-squares fit of the training energies (TorchANI's EnergyShifter does the
same); the value term only with --value-weight > 0 (and energies in the file). Batches: a random permutation of the
training frames per epoch (torch.randperm after --seed), cut into --batch frames, the last batch shorter; the
schedule steps once per epoch (cosine over --epochs to lr/100).

Prints one line: wall seconds of the training loop, and on TEST.h5 the relative force error ||F_pred - F|| / ||F||
over all components, the force MAE and RMSE (eV/A, per component), and with energies trained the energy MAE per
atom (meV/atom). --progress prints each epoch's mean training loss first (to see it fall). --train-frames N
trains on N frames of TRAIN.h5 spread evenly over it (every trajectory's) instead of all, for a quick run.

--check-aev FRAMES: instead of training, computes float64 AEVs of FRAMES frames of TEST.h5 (consecutive pairs
spread over the file: groups of several frames of one cell), of frame 0 less 5 atoms in frame 0's cell group (a
group padded with species -1) and of frame 0 less 3 atoms without a cell (a molecule), through the training's path
(grouped, padded, wrapped), and compares them with bench/aev_vs_torchani.py's torchani_aev (TorchANI frame by frame
with its cell, the positions as stored, not wrapped) and with tests/train/frames_reference.py's descriptor (images
by brute force, written independently of TorchANI); exits 1 above 1e-10 relative to the largest element.

Cost: on experiments/materials' data (2400 training frames of 31-108 atoms, radial cutoff 5.0 A, angular 3.5 A,
2 threads) an epoch takes ~110-160 s, ~0.05 s a frame: TorchANI's angular terms over every atom's ~66 pairs of
nearest neighbours, twice differentiated.

Needs torchani importable (TorchANI 2.2.4 on Debian's torch: bench/BENCHMARKS.md's venv,
/usr/bin/python3 -m venv --system-site-packages /tmp/ani-venv &&
/tmp/ani-venv/bin/pip install --no-deps torchani==2.2.4 lark-parser importlib_metadata zipp lazy_importer).
"""
import argparse
import math
import os
import sys
import time

import h5py
import numpy as np
import torch
import torchani

ANI_1X = {"radial_cutoff": 5.2, "angular_cutoff": 3.5, "radial_eta": 16.0, "angular_eta": 8.0, "zeta": 32.0,
          "radial_start": 0.9, "angular_start": 0.9, "radial_divisions": 16, "angular_divisions": 4,
          "angle_sections": 8}
ACTIVATIONS = {"silu": torch.nn.SiLU, "softplus": torch.nn.Softplus, "tanh": torch.nn.Tanh, "celu": torch.nn.CELU}
GROUP_FRAMES = 64  # frames of one cell per AEVComputer call in evaluation


def aev_computer(p, elements, dtype):
    """TorchANI's AEVComputer with the shifts spread as gradfit_dist spreads them (AEVComputer.cover_linearly's)."""
    f = dict(dtype=dtype)
    shf_r = torch.linspace(p["radial_start"], p["radial_cutoff"], p["radial_divisions"] + 1, **f)[:-1]
    shf_a = torch.linspace(p["angular_start"], p["angular_cutoff"], p["angular_divisions"] + 1, **f)[:-1]
    sections = p["angle_sections"]
    shf_z = torch.linspace(0, math.pi, sections + 1, **f)[:-1] + math.pi / (2 * sections)
    return torchani.AEVComputer(torch.tensor(p["radial_cutoff"], **f), torch.tensor(p["angular_cutoff"], **f),
                                torch.tensor([p["radial_eta"]], **f), shf_r, torch.tensor([p["angular_eta"]], **f),
                                torch.tensor([p["zeta"]], **f), shf_a, shf_z, elements).to(dtype)


def network(width, widths, activation):
    layers, inputs = [], width
    for w in widths:
        layers += [torch.nn.Linear(inputs, w), activation()]
        inputs = w
    layers.append(torch.nn.Linear(inputs, 1))
    return torch.nn.Sequential(*layers)


def complete_cell(cell, pbc):
    """The cell with the vectors of its non-periodic directions replaced by unit vectors orthogonal to the periodic
    ones (ase_import.py writes zeros there), so that TorchANI can invert it."""
    cell = cell.copy()
    basis = cell[pbc]
    for k in np.flatnonzero(~pbc):
        _, _, vt = np.linalg.svd(np.vstack([basis, np.zeros((3 - len(basis), 3))]))
        cell[k] = vt[-1]
        basis = np.vstack([basis, vt[-1]])
    return cell


class Frames:
    """A frames-layout data file: per frame its species (indices into `elements`), positions (wrapped into the cell
    along its periodic directions; `raw`: as stored), dE/dx, atoms, cell (3 x 3, completed), pbc and energy; the
    frames' cell groups (`group`: one id per distinct cell and pbc) and element counts."""

    def __init__(self, path, dtype, elements=None, limit=0):
        with h5py.File(path, "r") as f:
            layout = f.attrs.get("layout", b"")
            if (layout.decode() if isinstance(layout, bytes) else str(layout)) != "frames":
                sys.exit(f"ani_periodic.py: {path} is not in the frames layout (scripts/ase_import.py --layout "
                         "frames)")
            positions, grad = f["positions"][:].astype(np.float64), f["grad"][:].astype(np.float64)
            numbers, atoms = f["numbers"][:].astype(np.int64), f["atoms"][:].astype(np.int64)
            cells, pbc = f["cell"][:].reshape(-1, 3, 3).astype(np.float64), f["pbc"][:].reshape(-1, 3) != 0
            self.values = f["value"][:].astype(np.float64) if "value" in f else None
        first = np.concatenate([[0], np.cumsum(atoms)])
        keep = np.arange(len(atoms))
        if 0 < limit < len(atoms):  # --train-frames: `limit` frames spread evenly over the file
            keep = np.unique(np.linspace(0, len(atoms) - 1, limit).round().astype(np.int64))
            rows = np.concatenate([np.arange(first[f], first[f + 1]) for f in keep])
            positions, grad, numbers = positions[rows], grad[rows], numbers[rows]
            atoms, cells, pbc = atoms[keep], cells[keep], pbc[keep]
            self.values = None if self.values is None else self.values[keep]
        self.elements = elements or sorted(set(int(z) for z in numbers))
        others = sorted(set(int(z) for z in numbers) - set(self.elements))
        if others:
            sys.exit(f"ani_periodic.py: {path} holds elements {others} that the training file has not")
        species = np.searchsorted(self.elements, numbers)
        first = np.concatenate([[0], np.cumsum(atoms)])
        self.atoms, self.pbc = atoms, pbc
        self.cells = np.array([complete_cell(c, p) if p.any() else c for c, p in zip(cells, pbc)])
        self.counts = np.zeros((len(atoms), len(self.elements)))
        self.species, self.positions, self.raw, self.grad = [], [], [], []
        for f in range(len(atoms)):
            rows = slice(first[f], first[f + 1])
            x = positions[rows]
            if pbc[f].any():
                fractional = np.linalg.solve(self.cells[f].T, x.T).T
                fractional[:, pbc[f]] -= np.floor(fractional[:, pbc[f]])
                x = fractional @ self.cells[f]
            self.species.append(torch.from_numpy(species[rows]))
            self.positions.append(torch.from_numpy(x).to(dtype))
            self.raw.append(positions[rows])
            self.grad.append(torch.from_numpy(grad[rows]).to(dtype))
            self.counts[f] = np.bincount(species[rows], minlength=len(self.elements))
        keys = np.concatenate([self.cells.reshape(-1, 9), pbc.astype(np.float64)], axis=1)
        _, self.group = np.unique(keys, axis=0, return_inverse=True)
        self.dtype = dtype

    def __len__(self):
        return len(self.atoms)

    def append_part(self, f, atoms, periodic=True):
        """Appends frame f's first `atoms` atoms as a frame of its own (--check-aev): in f's cell group, or without
        a cell (a molecule); returns its index."""
        self.species.append(self.species[f][:atoms])
        self.raw.append(self.raw[f][:atoms])
        self.positions.append(self.positions[f][:atoms] if periodic else torch.from_numpy(self.raw[-1]))
        self.grad.append(self.grad[f][:atoms])
        self.atoms = np.append(self.atoms, atoms)
        self.pbc = np.vstack([self.pbc, self.pbc[f] if periodic else np.zeros(3, dtype=bool)])
        self.cells = np.concatenate([self.cells, self.cells[f][None] if periodic else np.zeros((1, 3, 3))])
        self.group = np.append(self.group, self.group[f] if periodic else self.group.max() + 1)
        self.counts = np.vstack([self.counts, np.bincount(self.species[-1].numpy(), minlength=len(self.elements))])
        return len(self.atoms) - 1

    def groups(self, frames, limit=None):
        """The frames (indices) cut into groups of one cell (at most `limit` frames each), each as (frames,
        species padded with -1, positions padded with 0, cell or None, pbc or None)."""
        frames = np.asarray(frames)
        for g in np.unique(self.group[frames]):
            members = frames[self.group[frames] == g]
            for begin in range(0, len(members), limit or len(members)):
                chosen = members[begin:begin + (limit or len(members))]
                species = torch.nn.utils.rnn.pad_sequence([self.species[f] for f in chosen], batch_first=True,
                                                          padding_value=-1)
                positions = torch.nn.utils.rnn.pad_sequence([self.positions[f] for f in chosen], batch_first=True)
                f0 = chosen[0]
                periodic = self.pbc[f0].any()
                cell = torch.from_numpy(self.cells[f0]).to(self.dtype) if periodic else None
                pbc = torch.from_numpy(self.pbc[f0]) if periodic else None
                yield chosen, species, positions, cell, pbc


def energies_and_gradients(model, computer, species, positions, cell, pbc, create_graph):
    """E (frames) and dE/dx (frames x atoms x 3, zeros at padding) of one group, through TorchANI."""
    positions = positions.detach().requires_grad_(True)
    aev = computer((species, positions), cell=cell, pbc=pbc).aevs
    energies = model((species, aev)).energies
    (g,) = torch.autograd.grad(energies.sum(), positions, create_graph=create_graph)
    return energies, g


def train(args, data, model, computer, shifted):
    """The training loop; returns its wall seconds."""
    nbar = 3 * data.atoms.sum() / len(data)
    atoms = torch.from_numpy(data.atoms).to(data.dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs, eta_min=args.lr / 100)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(len(data)).numpy()
        total, batches = 0.0, 0
        for first in range(0, len(data), args.batch):
            frames = order[first:first + args.batch]
            optimizer.zero_grad()
            loss_sum = 0.0
            for chosen, species, positions, cell, pbc in data.groups(frames):
                energies, g = energies_and_gradients(model, computer, species, positions, cell, pbc, True)
                target = torch.nn.utils.rnn.pad_sequence([data.grad[f] for f in chosen], batch_first=True)
                loss = ((g - target) * (species >= 0).unsqueeze(-1)).square().sum() / (len(frames) * nbar)
                if shifted is not None:
                    rows = torch.from_numpy(chosen)
                    residual = (energies - shifted.index_select(0, rows)) / atoms.index_select(0, rows)
                    loss = loss + args.value_weight * residual.square().sum() / len(frames)
                loss.backward()  # per group: the gradients add up over the batch's groups
                loss_sum += loss.item()
            optimizer.step()
            total, batches = total + loss_sum, batches + 1
        schedule.step()
        if args.progress:
            print(f"epoch {epoch + 1}: mean training loss {total / batches:.6g}", flush=True)
    return time.perf_counter() - start


def evaluate(model, computer, data):
    """Per frame E, and dE/dx of all atoms in frame order (A x 3), without graphs."""
    energies = torch.zeros(len(data), dtype=data.dtype)
    gradients = [None] * len(data)
    for chosen, species, positions, cell, pbc in data.groups(np.arange(len(data)), GROUP_FRAMES):
        e, g = energies_and_gradients(model, computer, species, positions, cell, pbc, False)
        energies[torch.from_numpy(chosen)] = e.detach()
        for k, f in enumerate(chosen):
            gradients[f] = g[k, :data.atoms[f]].detach()
    return energies, torch.cat(gradients)


def check_aev(args, p):
    """--check-aev: the training's AEV path against aev_vs_torchani.torchani_aev and frames_reference's descriptor,
    float64; returns the exit status."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [here, os.path.join(here, "..", "tests", "train")]
    from aev_vs_torchani import torchani_aev
    import frames_reference
    data = Frames(args.test, torch.float64)
    computer = aev_computer(p, len(data.elements), torch.float64)
    starts = np.unique(np.linspace(0, len(data) - 2, max(1, args.check_aev // 2)).astype(int))
    frames = np.unique(np.concatenate([starts, starts + 1]))[:args.check_aev]
    # Padding within a cell group and a frame without a cell, which the files may not have: frame 0 less 5 atoms
    # in frame 0's group, and frame 0 less 3 atoms without its cell.
    frames = np.concatenate([frames, [data.append_part(0, data.atoms[0] - 5),
                                      data.append_part(0, data.atoms[0] - 3, periodic=False)]])
    ours = {}
    for chosen, species, positions, cell, pbc in data.groups(frames):
        aev = computer((species, positions), cell=cell, pbc=pbc).aevs
        for k, f in enumerate(chosen):
            ours[f] = aev[k, :data.atoms[f]].numpy()
    descriptor = frames_reference.FramesDescriptor(p, data.elements)
    worst = 0.0
    for f in frames:
        numbers = [data.elements[s] for s in data.species[f].tolist()]
        periodic = data.pbc[f].any()
        if sorted(set(numbers)) != data.elements:
            print(f"frame {f}: not every element of the file; skipped (torchani_aev numbers the frame's own)")
            continue
        theirs = torchani_aev(p, numbers, data.raw[f].reshape(1, -1), data.cells[f][None] if periodic else None,
                              data.pbc[f].tolist() if periodic else None)[0]
        topology = frames_reference.Topology.join([descriptor.topology(data.raw[f], np.array(numbers),
                                                                       data.cells[f], data.pbc[f])])
        reference = descriptor(torch.from_numpy(data.raw[f]), topology).numpy()
        scale = float(np.abs(theirs).max())
        a, b = float(np.abs(ours[f] - theirs).max()), float(np.abs(ours[f] - reference).max())
        worst = max(worst, a / scale, b / scale)
        print(f"frame {f} ({data.atoms[f]} atoms, cell group {data.group[f]}, {'periodic' if periodic else 'none'}):"
              f" AEV {ours[f].shape[1]} per atom, largest element {scale:.3f}; difference to torchani_aev frame by "
              f"frame {a:.2e}, to frames_reference's {b:.2e}")
    print(f"TorchANI {torchani.__version__}: {len(frames)} frames, worst relative difference {worst:.2e} "
          f"({'ok' if worst <= 1e-10 else 'FAIL'}, tolerance 1e-10)")
    return 0 if worst <= 1e-10 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train")
    parser.add_argument("test")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--activation", default="silu", choices=sorted(ACTIVATIONS))
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--value-weight", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--train-frames", type=int, default=0, metavar="N")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--check-aev", type=int, default=0, metavar="FRAMES")
    for key, value in ANI_1X.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    args = parser.parse_args()
    p = {key: getattr(args, key) for key in ANI_1X}
    torch.set_num_threads(args.threads)
    if args.check_aev:
        return check_aev(args, p)
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    data = Frames(args.train, dtype, limit=args.train_frames)
    test = Frames(args.test, dtype, data.elements)
    computer = aev_computer(p, len(data.elements), dtype)
    torch.manual_seed(args.seed)
    activation = ACTIVATIONS[args.activation]
    model = torchani.ANIModel([network(computer.aev_length, args.widths, activation)
                               for _ in data.elements]).to(dtype)
    shifted, element_energies = None, None
    if args.value_weight > 0:
        if data.values is None or test.values is None:
            sys.exit("ani_periodic.py: --value-weight needs energies (a value dataset) in both files")
        element_energies = np.linalg.lstsq(data.counts, data.values, rcond=None)[0]
        shifted = torch.from_numpy(data.values - data.counts @ element_energies).to(dtype)
    seconds = train(args, data, model, computer, shifted)
    energies, g = evaluate(model, computer, test)
    s = torch.cat(test.grad)
    error = g - s
    line = (f"torchani {torchani.__version__} (AEV {computer.aev_length} per atom, {len(data.elements)} networks "
            f"{'-'.join(map(str, args.widths))} {args.activation}, {args.epochs} epochs, batch {args.batch}, "
            f"{args.threads} threads, {args.dtype}): {seconds:.1f} s training; test ({len(test)} frames): relative "
            f"force error {(error.norm() / s.norm()).item():.4f}, force MAE {error.abs().mean().item():.4f} eV/A, "
            f"RMSE {error.square().mean().sqrt().item():.4f} eV/A")
    if element_energies is not None:
        predicted = energies.double().numpy() + test.counts @ element_energies
        per_atom = np.abs(predicted - test.values) / test.atoms
        line += f", energy MAE {1000 * per_atom.mean():.2f} meV/atom"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
