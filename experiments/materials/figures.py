#!/usr/bin/env python3
"""The materials example's figures: predicted against EMT force components on the held-out frames (Cu and Ag
apart), and the energy trace of the NVE run.

Usage: figures.py PREDICTIONS.h5 TEST.h5 NVE.csv [--out DIR]

PREDICTIONS.h5 is `gradfit_dist eval RESULTS TEST.h5 --out PREDICTIONS.h5`'s file on TEST.h5 (a frames-layout file),
NVE.csv what nve.py wrote. Writes DIR/forces.png and DIR/nve.png (DIR: the current folder by default); every input
is read and checked first, a bad one is one error line and exit status 1. Needs h5py and matplotlib (run it with
/usr/bin/python3).
"""
import argparse
import os
import sys

import numpy as np

try:
    import h5py
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as error:
    sys.exit(f"figures.py: {error.name} is missing: install python3-h5py and python3-matplotlib, "
             "run with /usr/bin/python3")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
sys.path.insert(0, os.path.join(HERE, "..", "molecule"))
from tool_files import short_reason  # noqa: E402
from md import check_outputs  # noqa: E402  (experiments/molecule/md.py)
from plot import nve_figure, read_nve  # noqa: E402  (experiments/molecule/plot.py)

ELEMENTS = {29: ("Cu", "tab:orange"), 47: ("Ag", "tab:blue")}


def read_forces(predictions, test):
    """dE/dx predicted and stored (atoms x 3) and the atomic numbers; a one-line ValueError otherwise."""
    try:
        with h5py.File(predictions, "r") as p, h5py.File(test, "r") as t:
            if t.attrs.get("layout") != "frames" or p.attrs.get("layout") != "frames":
                raise ValueError(f"{predictions}, {test}: not eval's predictions on a frames-layout file")
            predicted, reference, numbers = p["grad"][:], t["grad"][:], t["numbers"][:]
    except (OSError, KeyError) as error:
        raise ValueError(f"{predictions}, {test}: cannot read them ({short_reason(error)})") from None
    if predicted.shape != reference.shape:
        raise ValueError(f"{predictions}: grad of shape {predicted.shape}, {test}'s {reference.shape}: eval's "
                         "predictions on another file")
    return -predicted, -reference, numbers


def nve_atoms(path):
    """The atom count, nve.py's last column."""
    with open(path, encoding="utf-8") as f:
        header, first = f.readline().strip().split(","), f.readline().strip().split(",")
    if header[-1] != "atoms" or len(first) != len(header):
        raise ValueError(f"{path}: no column atoms: not nve.py's nve.csv")
    return int(float(first[-1]))


def forces_figure(predicted, reference, numbers, path):
    error = predicted - reference
    rmse, mae = np.sqrt((error ** 2).mean()), np.abs(error).mean()
    relative = np.linalg.norm(error) / np.linalg.norm(reference)
    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    for z, (symbol, colour) in ELEMENTS.items():
        mine = numbers == z
        ax.scatter(reference[mine].ravel(), predicted[mine].ravel(), s=1, alpha=0.2, color=colour,
                   rasterized=True, label=f"{symbol} ({mine.sum()} atoms)")
    low, high = reference.min(), reference.max()
    ax.plot([low, high], [low, high], color="black", linewidth=0.8)
    ax.set_xlabel("EMT force component (eV/Å)")
    ax.set_ylabel("predicted force component (eV/Å)")
    ax.set_title(f"{len(reference)} held-out atoms: MAE {mae:.3f} eV/Å, RMSE {rmse:.3f} eV/Å\n"
                 f"relative error {100 * relative:.1f} %", fontsize=9)
    ax.legend(fontsize=8, markerscale=8)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    print(f"wrote {path}: test force MAE {mae:.4f} eV/Å, RMSE {rmse:.4f} eV/Å, relative {100 * relative:.2f} %")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions")
    parser.add_argument("test")
    parser.add_argument("nve")
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    try:
        check_outputs(args.out, ("forces.png", "nve.png"), [("PREDICTIONS.h5", args.predictions),
                                                            ("TEST.h5", args.test), ("NVE.csv", args.nve)])
        trace = read_nve(args.nve)
        predicted, reference, numbers = read_forces(args.predictions, args.test)
        atoms = nve_atoms(args.nve)
    except ValueError as error:
        sys.exit(f"figures.py: {error}")
    try:
        os.makedirs(args.out, exist_ok=True)
        forces_figure(predicted, reference, numbers, os.path.join(args.out, "forces.png"))
        nve_figure(trace, atoms, os.path.join(args.out, "nve.png"))
    except OSError as error:
        sys.exit(f"figures.py: cannot write {error.filename or args.out}: {error.strerror or short_reason(error)}")


if __name__ == "__main__":
    main()
