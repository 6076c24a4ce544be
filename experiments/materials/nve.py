#!/usr/bin/env python3
"""NVE molecular dynamics of a periodic cell with an exported model in ASE (GradfitCalculator), checked for energy
conservation and, along the way, against the EMT potential that labelled the training data.

Usage: nve.py MODEL.pt DATA.h5 [--frame 100] [--steps 1000] [--dt 1] [--temperature 900] [--seed 0]
             [--check-every 100] [--max-drift 1] [--out DIR]

MODEL.pt is `gradfit_dist export`'s file of a run trained on the frames layout, DATA.h5 a frames-layout file
(scripts/ase_import.py --layout frames): the run starts from its frame --frame (atoms, cell and pbc as stored; frame
100 of experiments/materials' test.h5 is a 108-atom cell of a held-out trajectory) with Maxwell-Boltzmann velocities
at --temperature K (seeded; no net momentum) and takes --steps Velocity Verlet steps of --dt fs. Every
--check-every steps (the first included) the frame is also computed with ASE's EMT (ase.calculators.emt): the
model's energy error per atom and its force error (RMSE and relative) along the trajectory show whether the MD
stayed where the model is trained.

Writes DIR/nve.csv (time in fs, potential, kinetic and total energy in eV, the temperature in K, the atoms) and
prints the largest excursion of the total energy from its start in meV/atom; exit status 1 when it exceeds
--max-drift. Bad input (no exported model or frames-layout file, a frame out of range, elements the model was not
trained on, an --out whose nve.csv would be an input) is one error line, exit status 1, before anything is written.
Needs ASE, torch and h5py (run it with /usr/bin/python3).
"""
import argparse
import csv
import os
import sys

import numpy as np

try:
    import h5py
    from ase import Atoms, units
    from ase.calculators.emt import EMT
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.md.verlet import VelocityVerlet
except ImportError as error:
    sys.exit(f"nve.py: {error.name} is missing: install python3-ase and python3-h5py, run it with /usr/bin/python3")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
sys.path.insert(0, os.path.join(HERE, "..", "molecule"))
from ase_calculator import GradfitCalculator  # noqa: E402  (scripts/, the other tools)
from tool_files import short_reason  # noqa: E402
from md import check_outputs  # noqa: E402  (experiments/molecule/md.py)

DATA_HINT = "make the file with scripts/ase_import.py --layout frames"


def read_frame(path, frame):
    """Frame `frame` of a frames-layout file: numbers, positions, cell (3 x 3), pbc; a one-line ValueError naming
    the file otherwise."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("layout") != "frames":
                raise ValueError(f"{path}: not a frames-layout data file ({DATA_HINT})")
            counts = f["atoms"][:]
            if not 0 <= frame < len(counts):
                raise ValueError(f"--frame {frame}: {path} has frames 0 to {len(counts) - 1}")
            first = int(counts[:frame].sum())
            rows = slice(first, first + int(counts[frame]))
            return (f["numbers"][rows], f["positions"][rows], f["cell"][frame].reshape(3, 3),
                    f["pbc"][frame].astype(bool))
    except (OSError, KeyError) as error:
        raise ValueError(f"{path}: cannot read it as a frames-layout data file ({short_reason(error)})") from None


def emt_errors(atoms):
    """The model's energy error (meV/atom) and force RMSE (eV/A) and relative error against ASE's EMT here."""
    reference = atoms.copy()
    reference.calc = EMT()
    forces, energy = atoms.get_forces(), atoms.get_potential_energy()
    difference = forces - reference.get_forces()
    return (1000 * (energy - reference.get_potential_energy()) / len(atoms), np.sqrt((difference ** 2).mean()),
            np.linalg.norm(difference) / np.linalg.norm(reference.get_forces()))


def run(atoms, args):
    """Velocity Verlet from Maxwell-Boltzmann velocities: rows of time, Epot, Ekin, Etot, T; the EMT checks."""
    MaxwellBoltzmannDistribution(atoms, temperature_K=args.temperature, rng=np.random.default_rng(args.seed))
    Stationary(atoms)
    rows, checks = [], []
    with VelocityVerlet(atoms, timestep=args.dt * units.fs) as dynamics:  # `with`: it closes the log it opens
        for step in range(args.steps + 1):
            if step:
                dynamics.run(1)
            epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
            rows.append((step * args.dt, epot, ekin, epot + ekin, atoms.get_temperature(), len(atoms)))
            if step % args.check_every == 0:
                checks.append((step * args.dt,) + emt_errors(atoms))
    return np.array(rows), np.array(checks)


def write_csv(path, rows):
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_fs", "potential_eV", "kinetic_eV", "total_eV", "temperature_K", "atoms"])
        w.writerows(rows.tolist())
    os.replace(path + ".tmp", path)


def parse():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--frame", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--dt", type=float, default=1.0, help="fs")
    parser.add_argument("--temperature", type=float, default=900.0, help="K")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-every", type=int, default=100)
    parser.add_argument("--max-drift", type=float, default=1.0, help="meV/atom")
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    for bad, message in ((args.steps < 1, f"--steps {args.steps}: at least 1"),
                         (args.check_every < 1, f"--check-every {args.check_every}: at least 1"),
                         (not args.dt > 0, f"--dt {args.dt:g}: a time step must be > 0 fs"),
                         (not args.temperature >= 0, f"--temperature {args.temperature:g}: must be >= 0 K")):
        if bad:
            sys.exit(f"nve.py: {message}")
    return args


def main():
    args = parse()
    try:
        check_outputs(args.out, ("nve.csv", "nve.csv.tmp"), [("MODEL.pt", args.model), ("DATA.h5", args.data)])
        numbers, positions, cell, pbc = read_frame(args.data, args.frame)
        atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
        atoms.calc = GradfitCalculator(args.model)
        atoms.calc.check_atoms(atoms)  # now, not at the first step
        rows, checks = run(atoms, args)
    except ValueError as error:
        sys.exit(f"nve.py: {error}")
    os.makedirs(args.out, exist_ok=True)
    write_csv(os.path.join(args.out, "nve.csv"), rows)
    drift = 1000 * np.abs(rows[:, 3] - rows[0, 3]).max() / len(atoms)
    print(f"{atoms.get_chemical_formula()} ({len(atoms)} atoms), NVE {args.steps} steps of {args.dt:g} fs from "
          f"frame {args.frame} at {args.temperature:g} K: mean temperature {rows[:, 4].mean():.0f} K")
    print(f"against EMT every {args.check_every} steps: energy error {np.abs(checks[:, 1]).max():.2f} meV/atom at "
          f"most, force RMSE {checks[:, 2].mean():.4f} eV/A ({100 * checks[:, 3].mean():.2f} % relative) on average")
    print(f"total energy within {drift:.3f} meV/atom of its start (--max-drift {args.max_drift:g})")
    if drift > args.max_drift:
        sys.exit(1)


if __name__ == "__main__":
    main()
