#!/usr/bin/env python3
"""Writes a small data file in the frames layout (scripts/ase_import.py --layout frames) for the tests of training on
frames of any atoms, with and without periodic cells.

Usage: write_frames.py OUT.h5 [--seed S] [--check]

12 frames of C, H and O, 3 to 9 atoms each (61 in all):
  3 molecules (3, 5, 7 atoms; pbc 0 0 0, cell zeros);
  3 periodic boxes (cubic 4.2, 4.6 and 5.0 Angstrom, 4 to 6 atoms) and one orthorhombic (4.4 x 4.8 x 5.4, 9 atoms);
  2 triclinic cells, the first 2.6 Angstrom along a (an atom sees its own images within a 3.0 cutoff);
  2 slabs: pbc 1 1 0 with c = 0 and a = 2.3 Angstrom (own images within a 2.4 cutoff), and pbc 1 0 1 with a
    non-periodic b that is not zero (model/neighbours.h: a non-periodic direction's vector may be anything);
  a wire: pbc 0 0 1, c 2.5 Angstrom long, a = b = 0.
Atoms are at least 0.9 Angstrom apart, periodic images included; the atoms of periodic frames are then moved by
random whole lattice vectors (positions may lie outside the cell). The energy of a frame is
  E = sum_i e_{Z_i} + 1/2 sum over atoms i and images j + n.H within 3.5 Angstrom (i != j or n != 0) of phi(d),
  phi(d) = D [(1 - exp(-alpha (d - r_ab)))^2 - 1] (cos(pi d / 3.5) + 1) / 2,
a Morse-like pair term with a smooth cutoff (an atom's own images add a constant), e_C = -38, e_O = -75,
e_H = -0.5 eV, r_ab the sum of the two elements' radii; grad = dE/dx by torch's autograd. --check prints the
largest difference of grad from central finite differences of E (step 1e-5 Angstrom) relative to the largest
|grad|, and exits 1 above 1e-7.
"""
import argparse
import itertools
import math
import sys

import h5py
import numpy as np
import torch

OFFSETS = {1: -0.5, 6: -38.0, 8: -75.0}  # eV per atom
RADII = {1: 0.35, 6: 0.75, 8: 0.7}  # Angstrom: r_ab = r_a + r_b
DEPTH, ALPHA, CUTOFF, MIN_DISTANCE = 1.0, 1.8, 3.5, 0.9
UNITS = "positions, cell: Angstrom, grad: eV/Angstrom (dE/dx, the negative forces), value: eV"

ZERO = [[0, 0, 0]] * 3
FRAMES = [  # atomic numbers, cell rows, pbc
    ([8, 1, 1], ZERO, [0, 0, 0]),
    ([6, 8, 1, 1, 1], ZERO, [0, 0, 0]),
    ([6, 6, 8, 1, 1, 1, 1], ZERO, [0, 0, 0]),
    ([6, 8, 1, 1], np.diag([4.2] * 3), [1, 1, 1]),
    ([6, 1, 1, 1, 1], np.diag([4.6] * 3), [1, 1, 1]),
    ([8, 8, 6, 6, 1, 1], np.diag([5.0] * 3), [1, 1, 1]),
    ([6, 8, 1, 1], [[2.6, 0, 0], [0.7, 4.2, 0], [-0.5, 0.8, 4.5]], [1, 1, 1]),
    ([6, 6, 8, 1, 1, 1], [[4.4, 0.2, 0], [1.6, 4.0, 0.3], [0.9, -1.1, 4.2]], [1, 1, 1]),
    ([6, 8, 1, 1], [[2.3, 0, 0], [0.5, 3.9, 0], [0, 0, 0]], [1, 1, 0]),
    ([8, 6, 1, 1, 1], [[4.0, 0, 0.6], [0.3, 11.0, 0.4], [0.4, 0.2, 3.8]], [1, 0, 1]),
    ([6, 1, 1], [[0, 0, 0], [0, 0, 0], [0.3, 0.2, 2.5]], [0, 0, 1]),
    ([6, 6, 6, 8, 8, 1, 1, 1, 1], np.diag([4.4, 4.8, 5.4]), [1, 1, 1]),
]


def spacing(cell, pbc, k):
    """The distance between neighbouring lattice planes of the periodic direction k within the periodic span: the
    length of h_k's component orthogonal to the other periodic vectors."""
    others = [cell[m] for m in range(3) if pbc[m] and m != k]
    if not others:
        return np.linalg.norm(cell[k])
    if len(others) == 1:
        return np.linalg.norm(np.cross(cell[k], others[0])) / np.linalg.norm(others[0])
    normal = np.cross(*others)
    return abs(cell[k] @ normal) / np.linalg.norm(normal)


def pairs(positions, cell, pbc, cutoff):
    """Every (i, j, n.H) with |r_j + n.H - r_i| < cutoff, i != j or n != 0: |n_k| spacing_k <= |n.H| < cutoff plus
    the atoms' largest distance, so n_k up to that over spacing_k, plus 1."""
    widest = max(np.linalg.norm(a - b) for a in positions for b in positions)
    reach = [math.ceil((cutoff + widest) / spacing(cell, pbc, k)) + 1 if pbc[k] else 0 for k in range(3)]
    out = []
    for n in itertools.product(*[range(-m, m + 1) for m in reach]):
        offset = np.array(n, dtype=np.float64) @ cell
        d = np.linalg.norm(positions[None, :] + offset - positions[:, None], axis=-1)
        if not any(n):
            np.fill_diagonal(d, np.inf)
        out += [(i, j, offset) for i, j in zip(*np.nonzero(d < cutoff))]
    return out


def energy(positions, numbers, cell, pbc):
    """E (a float64 tensor, differentiable by `positions`, a tensor) over the images found at these positions."""
    e = torch.tensor(sum(OFFSETS[z] for z in numbers), dtype=torch.float64)
    for i, j, offset in pairs(positions.detach().numpy(), cell, pbc, CUTOFF):
        d = torch.linalg.norm(positions[j] + torch.from_numpy(offset) - positions[i])
        r0 = RADII[numbers[i]] + RADII[numbers[j]]
        morse = DEPTH * ((1 - torch.exp(-ALPHA * (d - r0))) ** 2 - 1)
        e = e + 0.5 * morse * (torch.cos(math.pi * d / CUTOFF) + 1) / 2
    return e


def energy_and_grad(positions, numbers, cell, pbc):
    r = torch.from_numpy(positions).requires_grad_(True)
    e = energy(r, numbers, cell, pbc)
    (grad,) = torch.autograd.grad(e, r)
    return float(e), grad.numpy()


def place(rng, numbers, cell, pbc):
    """Positions at least MIN_DISTANCE apart (images included): a molecule grown atom by atom 1.0 to 1.6 Angstrom
    from an earlier atom; in a cell, uniform fractional coordinates along the periodic directions and within 1.2
    Angstrom of the periodic span across it."""
    periodic = np.flatnonzero(pbc)
    across = np.linalg.svd(cell[periodic])[2][len(periodic):] if periodic.size else np.eye(3)
    positions = []
    while len(positions) < len(numbers):
        if not periodic.size:
            step = rng.normal(size=3)
            at = (positions[rng.integers(len(positions))] + rng.uniform(1.0, 1.6) * step / np.linalg.norm(step)
                  if positions else np.zeros(3))
        else:
            at = rng.uniform(size=len(periodic)) @ cell[periodic] + rng.uniform(-1.2, 1.2, len(across)) @ across
        trial = np.array(positions + [at])
        if not pairs(trial, cell, pbc, MIN_DISTANCE):
            positions.append(at)
    positions = np.array(positions)
    if periodic.size:  # anywhere, not only in the cell
        positions += rng.integers(-1, 3, size=(len(numbers), 3)) * np.asarray(pbc) @ cell
    return positions


def finite_difference_error(positions, numbers, cell, pbc, grad, h=1e-5):
    """max |(E(x + h) - E(x - h)) / 2h - grad| over the coordinates."""
    worst = 0.0
    for a, c in itertools.product(range(len(numbers)), range(3)):
        up, down = positions.copy(), positions.copy()
        up[a, c] += h
        down[a, c] -= h
        slope = (energy_and_grad(up, numbers, cell, pbc)[0] - energy_and_grad(down, numbers, cell, pbc)[0]) / (2 * h)
        worst = max(worst, abs(slope - grad[a, c]))
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="compare grad with finite differences of E")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    positions, grad, values, worst, largest = [], [], [], 0.0, 0.0
    for numbers, cell, pbc in FRAMES:
        cell = np.asarray(cell, dtype=np.float64)
        r = place(rng, numbers, cell, pbc)
        e, g = energy_and_grad(r, numbers, cell, pbc)
        positions.append(r)
        grad.append(g)
        values.append(e)
        if args.check:
            worst = max(worst, finite_difference_error(r, numbers, cell, pbc, g))
            largest = max(largest, np.abs(g).max())
    with h5py.File(args.out, "w") as f:
        f["positions"] = np.concatenate(positions)
        f["grad"] = np.concatenate(grad)
        f["numbers"] = np.array([z for numbers, _, _ in FRAMES for z in numbers], dtype=np.int64)
        f["atoms"] = np.array([len(numbers) for numbers, _, _ in FRAMES], dtype=np.int64)
        f["value"] = np.array(values)
        f["cell"] = np.array([np.asarray(cell, dtype=np.float64).reshape(9) for _, cell, _ in FRAMES])
        f["pbc"] = np.array([pbc for _, _, pbc in FRAMES], dtype=np.int8)
        f.attrs["layout"] = "frames"
        f.attrs["units"] = UNITS
        f.attrs["source"] = f"tests/train/write_frames.py --seed {args.seed}"
        f.attrs["frames"] = len(FRAMES)
    if args.check:
        print(f"grad vs central differences of E: max |difference| {worst:.2e} ({worst / largest:.2e} of max |grad| "
              f"{largest:.3g})")
        return 0 if worst / largest <= 1e-7 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
