#!/usr/bin/env python3
"""Self-checks of tests/train/frames_reference.py (the frames layout's PyTorch reference), each against a property
that holds exactly, on write_frames.py's frames (seed 5) and per-element networks of a fixed seed:

  1. every periodic frame: V and dV/dx do not change when an atom moves by a periodic lattice vector; a supercell
     doubled along each periodic direction has 2^p times V and the same dV/dx on each copy; V does not change and
     dV/dx turns when the cell and the atoms turn together (1e-12, relative to max |V| or max |dV/dx|);
  2. the images: write_frames.py's search (a bound of its own) finds the same (i, j, n.H);
  3. every molecule (no periodic direction): the frame descriptor G and its vector-Jacobian product equal
     atom_centered_reference.AtomCentered's (1e-14);
  4. training on frames that are all one 5-atom molecule (mini-batches of 4 with energies, and full batch with
     huber) equals pytorch_reference.py's training on the same data in the fixed layout (1e-12).

Usage: frames_reference_check.py. Prints one line per check; exits 1 when one fails.
"""
import os
import sys
import tempfile

import h5py
import numpy as np
import torch

import atom_centered_reference as ac
import frames_reference as fr
import pytorch_reference as pr
import write_frames

ATTRS = {**pr.DEFAULTS, "radial_cutoff": 3.0, "angular_cutoff": 2.4, "radial_eta": 4.0, "angular_eta": 3.0,
         "zeta": 4.0, "radial_start": 0.9, "angular_start": 0.9, "radial_divisions": 4, "angular_divisions": 2,
         "angle_sections": 3, "seed": 7, "dtype": "float64", "features": "atom_centered", "widths": [8, 8],
         "activation": "softplus", "optimizer": "adam", "lr": 0.01, "momentum": 0.0, "epochs": 3, "batch_size": 0,
         "value_weight": 0.0}
ELEMENTS = [1, 6, 8]


def frames(seed=5):
    """write_frames.py's frames: (positions, numbers, cell, pbc) each."""
    rng = np.random.default_rng(seed)
    out = []
    for numbers, cell, pbc in write_frames.FRAMES:
        cell = np.asarray(cell, dtype=np.float64)
        out.append((write_frames.place(rng, numbers, cell, pbc), np.array(numbers), cell, np.array(pbc) != 0))
    return out


def energy(model, positions, numbers, cell, pbc):
    """V and dV/dx of one frame."""
    topology = fr.Topology.join([model.descriptor.topology(positions, numbers, cell, pbc)])
    r = torch.from_numpy(positions).requires_grad_(True)
    v = model(r, topology)
    (dvdx,) = torch.autograd.grad(v.sum(), r)
    return float(v), dvdx.numpy()


def largest(*values):
    """The largest of the numbers, NaN if one is NaN."""
    return float(np.max(values))


def supercell(positions, cell, pbc):
    """The frame doubled along each periodic direction: positions (copy after copy) and cell."""
    copies = [np.array(n) for n in np.ndindex(*[2 if p else 1 for p in pbc])]
    return np.concatenate([positions + n @ cell for n in copies]), cell * np.where(pbc, 2, 1)[:, None], len(copies)


def check_invariance(model, data):
    """Check 1: the largest relative change over the periodic frames."""
    c, s = np.cos(0.7), np.sin(0.7)
    turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
    worst = 0.0
    for positions, numbers, cell, pbc in data:
        if not pbc.any():
            continue
        v, dvdx = energy(model, positions, numbers, cell, pbc)
        scale_v, scale_g = max(abs(v), 1.0), np.abs(dvdx).max()
        for k in np.flatnonzero(pbc):
            moved = positions.copy()
            moved[len(numbers) // 2] += (-1) ** k * cell[k]
            v2, dvdx2 = energy(model, moved, numbers, cell, pbc)
            worst = largest(worst, abs(v2 - v) / scale_v, np.abs(dvdx2 - dvdx).max() / scale_g)
        big, big_cell, copies = supercell(positions, cell, pbc)
        v2, dvdx2 = energy(model, big, np.tile(numbers, copies), big_cell, pbc)
        worst = largest(worst, abs(v2 - copies * v) / (copies * scale_v),
                        np.abs(dvdx2 - np.tile(dvdx, (copies, 1))).max() / scale_g)
        v2, dvdx2 = energy(model, positions @ turn.T, numbers, cell @ turn.T, pbc)
        worst = largest(worst, abs(v2 - v) / scale_v, np.abs(dvdx2 - dvdx @ turn.T).max() / scale_g)
    return worst


def sorted_images(images):
    """(i, j, n.H) sorted, n.H rounded to 1e-9 Angstrom."""
    return sorted((int(i), int(j), tuple(np.round(offset, 9))) for i, j, offset in images)


def check_images(data):
    """Check 2: whether write_frames.pairs (its own bound on the images: the lattice planes' spacing) finds the same
    images as frames_reference.images in every frame."""
    same = True
    for positions, _, cell, pbc in data:
        i, j, n = fr.images(positions, cell, pbc, 3.0)
        found = zip(i, j, n.astype(np.float64) @ cell)
        other = write_frames.pairs(positions, cell, pbc, 3.0)
        same &= sorted_images(found) == sorted_images(other)
    return same


def check_molecules(data):
    """Check 3: the largest difference of G and of g . dG/dx from AtomCentered's over the molecules."""
    worst = 0.0
    for positions, numbers, cell, pbc in data:
        if pbc.any():
            continue
        descriptor = fr.FramesDescriptor(ATTRS, sorted(set(numbers.tolist())))
        r = torch.from_numpy(positions).requires_grad_(True)
        g = descriptor(r, fr.Topology.join([descriptor.topology(positions, numbers, cell, pbc)]))
        x = torch.from_numpy(positions.reshape(1, -1)).requires_grad_(True)
        g_ref = ac.AtomCentered(ATTRS, numbers)(x)[0]
        weights = torch.from_numpy(np.random.default_rng(1).normal(size=tuple(g.shape)))
        (jg,) = torch.autograd.grad((weights * g).sum(), r)
        (jg_ref,) = torch.autograd.grad((weights * g_ref).sum(), x)
        worst = largest(worst, float((g - g_ref).abs().max()), float((jg.reshape(-1) - jg_ref.reshape(-1)).abs().max()))
    return worst


def check_training():
    """Check 4: the largest relative difference of the histories, final weights and loss of the two layouts."""
    rng = np.random.default_rng(3)
    base = np.array([[0, 0, 0], [1.4, 0, 0], [-0.6, 0.9, 0.1], [-0.5, -0.9, 0.3], [2.9, 0.8, -0.4]])
    numbers = np.array([6, 8, 1, 1, 1])
    x = base[None] + 0.12 * rng.normal(size=(6, 5, 3))
    grad, value = rng.normal(size=(6, 5, 3)), -115.5 + rng.normal(size=6)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "molecule.h5")
        with h5py.File(path, "w") as f:
            f["positions"], f["grad"], f["numbers"] = x.reshape(-1, 3), grad.reshape(-1, 3), np.tile(numbers, 6)
            f["atoms"], f["value"] = np.full(6, 5), value
            f["cell"], f["pbc"] = np.zeros((6, 9)), np.zeros((6, 3), dtype=np.int8)
            f.attrs["layout"] = "frames"
        data = fr.FrameSet(path)
    worst = 0.0
    for extra in ({"batch_size": 4, "value_weight": 0.2, "widths_H": [6]}, {"loss": "huber", "huber_delta": 0.5}):
        attrs = {**ATTRS, **extra, "numbers": numbers, "element_energies": data.element_energies()[0]}
        value_term = None
        if attrs["value_weight"] > 0:
            value_term = pr.ValueTerm(attrs["value_weight"], pr.element_energies(numbers, torch.from_numpy(value))[1],
                                      5)
        fixed = pr.train(attrs, torch.from_numpy(x.reshape(6, 15)), torch.from_numpy(grad.reshape(6, 15)),
                         value_term=value_term)
        frames_run = pr.train_frames(attrs, data)[0]
        for a, b in zip(fixed[:3], frames_run[:3]):
            worst = largest(worst, pr.relative(b, a))
        worst = largest(worst, *[pr.relative_to_largest(frames_run[3][k], w) for k, w in fixed[3].items()],
                        pr.relative(frames_run[5], fixed[5]))
    return worst


def main():
    torch.set_num_threads(1)
    data = frames()
    model, _ = pr.build_model(ATTRS, elements=ELEMENTS)
    results = [
        ("periodic frames: V, dV/dx under lattice moves, supercells and turns", check_invariance(model, data), 1e-12),
        ("molecules: G and g.dG/dx against atom_centered_reference.AtomCentered", check_molecules(data), 1e-14),
        ("one molecule's frames: training against the fixed layout's", check_training(), 1e-12)]
    ok = True
    for label, worst, tol in results:
        ok &= worst <= tol
        print(f"{label}: largest difference {worst:.2e} ({'ok' if worst <= tol else 'FAIL'}, tolerance {tol:g})")
    images = check_images(data)
    print(f"images: write_frames.py's search finds {'the same' if images else 'OTHER'} images (i, j, n.H) in every "
          "frame")
    return 0 if ok and images else 1


if __name__ == "__main__":
    sys.exit(main())
