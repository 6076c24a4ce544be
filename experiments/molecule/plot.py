#!/usr/bin/env python3
"""The worked example's two figures: predicted against reference force components on the test frames, and the
energy trace of the NVE run.

Usage: plot.py MODEL.pt TEST.h5 NVE.csv [--out DIR]

MODEL.pt is `gradfit_dist export`'s file, TEST.h5 held-out frames (scripts/ase_import.py's file), NVE.csv what md.py
wrote. Writes DIR/forces.png and DIR/nve.png (DIR: the current folder by default). Every input is read and checked
before a figure is written: a bad one (no exported model, no data file, no nve.csv of md.py, test frames of other
atoms than the model's, a figure that would write over an input) is one error line, exit status 1. Needs ASE,
torch, h5py and matplotlib (run it with /usr/bin/python3).
"""
import argparse
import csv
import os
import sys

import numpy as np

try:
    import h5py  # noqa: F401  (read through md.open_data; checked here for this error line)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as error:
    sys.exit(f"plot.py: {error.name} is missing: install python3-h5py and python3-matplotlib, "
             "run with /usr/bin/python3")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ase_calculator import GradfitCalculator, describe  # noqa: E402
from tool_files import short_reason  # noqa: E402
from md import check_outputs, open_data  # noqa: E402  (md.py beside this file)

NVE_COLUMNS = ["time_fs", "potential_eV", "kinetic_eV", "total_eV"]  # the first columns of md.py's nve.csv


def test_forces(model, test):
    """The model's predicted and the reference forces (frames × 3 atoms) of the test frames."""
    calculator = GradfitCalculator(model)
    with open_data(test, ("x", "grad")) as f:
        try:
            x, reference = f["x"][:], -f["grad"][:]
        except (OSError, RuntimeError) as error:  # a damaged dataset
            raise ValueError(f"{test}: cannot read x and grad, a damaged file? ({short_reason(error)})") from None
        numbers = [int(z) for z in np.asarray(f.attrs["numbers"]).reshape(-1)] if "numbers" in f.attrs else None
    if calculator.numbers is not None and numbers is not None and numbers != calculator.numbers:
        raise ValueError(f"{model} was trained on {describe(calculator.numbers)}, the frames of {test} are "
                         f"{describe(numbers)}")
    _, predicted = calculator.evaluate(x)
    return predicted.reshape(reference.shape), reference


def read_nve(path):
    """md.py's nve.csv as rows of numbers (at least two); a one-line ValueError otherwise."""
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not md.py's nve.csv")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file: not md.py's nve.csv") from None
    except (OSError, csv.Error) as error:
        raise ValueError(f"{path}: cannot read it ({short_reason(error)})") from None
    if not lines or lines[0][:len(NVE_COLUMNS)] != NVE_COLUMNS:
        first = ",".join(lines[0])[:60] if lines else "(empty file)"
        raise ValueError(f"{path}: not md.py's nve.csv (its first line is {first!r}, not {','.join(NVE_COLUMNS)},...)")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            rows.append([float(v) for v in line[:len(NVE_COLUMNS)]])
        except ValueError:
            raise ValueError(f"{path}: line {number}: {','.join(line)[:60]!r} is not {len(NVE_COLUMNS)} numbers") \
                from None
        if len(rows[-1]) != len(NVE_COLUMNS):
            raise ValueError(f"{path}: line {number}: {len(line)} columns, not {len(lines[0])}")
    if len(rows) < 2:
        raise ValueError(f"{path}: {len(rows)} rows of numbers: an energy trace needs at least 2")
    return np.array(rows)


def forces_figure(predicted, reference, path):
    error = predicted - reference
    rmse, mae = np.sqrt((error ** 2).mean()), np.abs(error).mean()
    relative = np.linalg.norm(error) / np.linalg.norm(reference)
    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    ax.scatter(reference.ravel(), predicted.ravel(), s=1, alpha=0.25, color="tab:blue", rasterized=True)
    low, high = reference.min(), reference.max()
    ax.plot([low, high], [low, high], color="black", linewidth=0.8)
    ax.set_xlabel("reference force component (eV/Å)")
    ax.set_ylabel("predicted force component (eV/Å)")
    ax.set_title(f"{len(reference)} test frames: MAE {mae:.3f} eV/Å, RMSE {rmse:.3f} eV/Å\n"
                 f"relative error {100 * relative:.1f} %", fontsize=9)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    print(f"wrote {path}: test force MAE {mae:.4f} eV/Å, RMSE {rmse:.4f} eV/Å, relative {100 * relative:.2f} %")


def nve_figure(rows, atoms, path):
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
    try:  # every input read and checked before anything is written
        check_outputs(args.out, ("forces.png", "nve.png"),
                      [("MODEL.pt", args.model), ("TEST.h5", args.test), ("NVE.csv", args.nve)])
        trace = read_nve(args.nve)
        predicted, reference = test_forces(args.model, args.test)
    except ValueError as error:
        sys.exit(f"plot.py: {error}")
    try:
        os.makedirs(args.out, exist_ok=True)
        forces_figure(predicted, reference, os.path.join(args.out, "forces.png"))
        nve_figure(trace, reference.shape[1] // 3, os.path.join(args.out, "nve.png"))
    except OSError as error:
        sys.exit(f"plot.py: cannot write {error.filename or args.out}: {error.strerror or short_reason(error)}")


if __name__ == "__main__":
    main()
