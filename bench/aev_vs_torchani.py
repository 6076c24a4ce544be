#!/usr/bin/env python3
"""gradfit_dist's atom_centered descriptor against TorchANI's AEVComputer, same parameters, float64.

Usage: aev_vs_torchani.py BENCH_DESCRIPTOR WORKDIR
  BENCH_DESCRIPTOR: the built bench/bench_descriptor.cpp (cmake --build build --target bench_descriptor)

Needs torchani importable (a virtual environment; see BENCHMARKS.md: TorchANI 2.2.4 runs on Debian's torch with
`pip install --no-deps torchani==2.2.4 lark-parser importlib_metadata zipp lazy_importer` in a venv made with
--system-site-packages). Frames: ASE's ethanol (H, C, O) and acetamide (H, C, N, O: ANI-1x's four elements), each
atom moved by N(0, 0.1 Å) in 200 frames; and periodic cells (model/frame_descriptor.h, TorchANI's cell and pbc
arguments): a sheared 2x2x2 FCC Cu/Ni alloy of 32 atoms and a small triclinic H/C/O cell of 6 atoms whose cutoff
reaches two cells, 20 frames each. For ANI-1x's parameters and for another set, it prints the largest absolute and
relative difference of the descriptors and exits 1 above 1e-12 (relative to the largest element).
"""
import math
import subprocess
import sys

import h5py
import numpy as np
import torch
import torchani
from ase.build import bulk, molecule

SETS = {
    "ANI-1x": {},
    "other": {"radial_cutoff": 4.0, "angular_cutoff": 3.0, "radial_eta": 10.0, "angular_eta": 5.0, "zeta": 8.0,
              "radial_start": 0.7, "angular_start": 0.8, "radial_divisions": 12, "angular_divisions": 6,
              "angle_sections": 5},
}
DEFAULTS = {"radial_cutoff": 5.2, "angular_cutoff": 3.5, "radial_eta": 16.0, "angular_eta": 8.0, "zeta": 32.0,
            "radial_start": 0.9, "angular_start": 0.9, "radial_divisions": 16, "angular_divisions": 4,
            "angle_sections": 8}


def torchani_aev(p, numbers, x, cells=None, pbc=None):
    """TorchANI's AEVComputer with the shift grids of AEVComputer.cover_linearly, species = index of Z among the
    molecule's sorted elements; with cells (frames x 3 x 3) and pbc, frame by frame with its cell."""
    f64 = dict(dtype=torch.float64)
    shf_r = torch.linspace(p["radial_start"], p["radial_cutoff"], p["radial_divisions"] + 1, **f64)[:-1]
    shf_a = torch.linspace(p["angular_start"], p["angular_cutoff"], p["angular_divisions"] + 1, **f64)[:-1]
    sections = p["angle_sections"]
    shf_z = torch.linspace(0, math.pi, sections + 1, **f64)[:-1] + math.pi / (2 * sections)
    elements = sorted(set(numbers))
    computer = torchani.AEVComputer(torch.tensor(p["radial_cutoff"], **f64), torch.tensor(p["angular_cutoff"], **f64),
                                    torch.tensor([p["radial_eta"]], **f64), shf_r,
                                    torch.tensor([p["angular_eta"]], **f64), torch.tensor([p["zeta"]], **f64), shf_a,
                                    shf_z, len(elements)).to(torch.float64)
    species = torch.tensor([[elements.index(z) for z in numbers]] * x.shape[0])
    coordinates = torch.from_numpy(x).reshape(x.shape[0], -1, 3)
    if cells is None:
        return computer((species, coordinates))[1].numpy()
    return np.concatenate([computer((species[f:f + 1], coordinates[f:f + 1]), cell=torch.from_numpy(cells[f]),
                                    pbc=torch.tensor(pbc))[1].numpy() for f in range(x.shape[0])])


def periodic_frames(rng):
    """(name, numbers, x (frames x 3a), cells (frames x 3 x 3), pbc): two periodic structures, 20 frames each."""
    alloy = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    alloy.numbers[::3] = 28  # every third atom Ni
    shear = np.array([[1.0, 0.06, 0.0], [0.0, 1.0, -0.04], [0.05, 0.0, 1.0]])
    small = np.array([[4.1, 0.0, 0.0], [0.9, 3.8, 0.0], [0.4, 0.7, 4.4]])
    structures = [("CuNi-fcc", alloy.numbers, alloy.positions, alloy.cell.array @ shear),
                  ("HCO-triclinic", np.array([6, 8, 1, 1, 1, 1]), rng.uniform(size=(6, 3)) @ small, small)]
    for name, numbers, positions, cell in structures:
        x = (positions[None] + 0.1 * rng.normal(size=(20, len(numbers), 3))).reshape(20, -1)
        yield name, [int(z) for z in numbers], x, np.repeat(cell[None], 20, axis=0), [True, True, True]


def molecule_frames(rng):
    """(name, numbers, x, None, None): ethanol and acetamide, 200 frames each."""
    for name in ("CH3CH2OH", "CH3CONH2"):
        atoms = molecule(name)
        x = (atoms.positions[None] + 0.1 * rng.normal(size=(200, len(atoms), 3))).reshape(200, -1)
        yield name, [int(z) for z in atoms.numbers], x, None, None


def main():
    tool, work = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    worst = 0.0
    for name, numbers, x, cells, pbc in list(molecule_frames(rng)) + list(periodic_frames(rng)):
        data = f"{work}/{name}.h5"
        with h5py.File(data, "w") as f:
            f["x"] = x
            f.attrs["numbers"] = np.array(numbers)
            if cells is not None:
                f["cell"] = cells.reshape(len(x), 9)
                f.attrs["pbc"] = np.array(pbc, dtype=np.int64)
        for label, changes in SETS.items():
            p = {**DEFAULTS, **changes}
            out = f"{work}/{name}_{label}_aev.h5"
            subprocess.run([tool, data, out] + [f"{k}={v}" for k, v in changes.items()], check=True)
            with h5py.File(out) as f:
                ours = f["aev"][:]
            theirs = torchani_aev(p, numbers, x, cells, pbc)
            assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
            absolute = float(np.abs(ours - theirs).max())
            relative = absolute / float(np.abs(theirs).max())
            worst = max(worst, relative)
            kind = "periodic, " if cells is not None else ""
            print(f"{name} ({kind}{len(numbers)} atoms, {len(set(numbers))} elements), {label} parameters: descriptor "
                  f"{ours.shape[1]} x {ours.shape[2]} per frame, largest difference to TorchANI {absolute:.2e} "
                  f"absolute, {relative:.2e} relative to the largest element")
    print(f"TorchANI {torchani.__version__}, torch {torch.__version__}: worst {worst:.2e} "
          f"({'ok' if worst <= 1e-12 else 'FAIL'}, tolerance 1e-12)")
    return 0 if worst <= 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
