#!/usr/bin/env python3
"""The worked example's two figures: predicted against reference force components on the test frames, and the
energy trace of the NVE run.

Usage: plot.py MODEL.pt TEST.h5 NVE.csv [--out DIR]

MODEL.pt is `gradfit_dist export`'s file, TEST.h5 held-out frames (scripts/ase_import.py's file), NVE.csv what md.py
wrote. Writes DIR/forces.png and DIR/nve.png (DIR: the current folder by default). Needs ASE,
torch, h5py and matplotlib (run it with /usr/bin/python3).
"""
import argparse
import csv
import os
import sys

import numpy as np

try:
    import h5py
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as error:
    sys.exit(f"plot.py: {error.name} is missing: install python3-h5py and python3-matplotlib, run with /usr/bin/python3")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from ase_calculator import GradfitCalculator  # noqa: E402


def forces_figure(model, test, path):
    with h5py.File(test, "r") as f:
        x, reference = f["x"][:], -f["grad"][:]
    _, predicted = GradfitCalculator(model).evaluate(x)
    predicted = predicted.reshape(reference.shape)
    error = predicted - reference
    rmse, mae = np.sqrt((error ** 2).mean()), np.abs(error).mean()
    relative = np.linalg.norm(error) / np.linalg.norm(reference)
    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    ax.scatter(reference.ravel(), predicted.ravel(), s=1, alpha=0.25, color="tab:blue", rasterized=True)
    low, high = reference.min(), reference.max()
    ax.plot([low, high], [low, high], color="black", linewidth=0.8)
    ax.set_xlabel("reference force component (eV/Å)")
    ax.set_ylabel("predicted force component (eV/Å)")
    ax.set_title(f"{len(x)} test frames: MAE {mae:.3f} eV/Å, RMSE {rmse:.3f} eV/Å\n"
                 f"relative error {100 * relative:.1f} %", fontsize=9)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    print(f"wrote {path}: test force MAE {mae:.4f} eV/Å, RMSE {rmse:.4f} eV/Å, relative {100 * relative:.2f} %")


def nve_figure(nve, atoms, path):
    with open(nve) as f:
        rows = np.array([[float(v) for v in row] for row in list(csv.reader(f))[1:]])
    t, epot, ekin, etot = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    per_atom = 1000.0 / atoms  # eV -> meV/atom
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(t, (epot - etot[0]) * per_atom, label="potential", color="tab:orange", linewidth=0.9)
    ax.plot(t, ekin * per_atom, label="kinetic", color="tab:green", linewidth=0.9)
    ax.plot(t, (etot - etot[0]) * per_atom, label="total", color="black", linewidth=1.4)
    ax.set_xlabel("time (fs)")
    ax.set_ylabel("energy (meV/atom, total's start at 0)")
    drift = np.abs(etot - etot[0]).max() * per_atom
    ax.set_title(f"NVE, Velocity Verlet {t[1] - t[0]:g} fs: total energy within {drift:.2f} meV/atom", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    print(f"wrote {path}: total energy drift {drift:.3f} meV/atom over {t[-1]:g} fs")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("test")
    parser.add_argument("nve")
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    forces_figure(args.model, args.test, os.path.join(args.out, "forces.png"))
    with h5py.File(args.test, "r") as f:
        atoms = f["x"].shape[1] // 3
    nve_figure(args.nve, atoms, os.path.join(args.out, "nve.png"))


if __name__ == "__main__":
    main()
