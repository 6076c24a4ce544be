#!/usr/bin/env python3
"""Molecular dynamics with a fitted potential: an NVE run (Velocity Verlet) in ASE with GradfitCalculator, checked for
energy conservation and for bonds that stay where the training data went.

Usage: md.py MODEL.pt TRAIN.h5 [--steps 400] [--dt 0.5] [--temperature 300] [--frame 0] [--seed 0] [--out DIR]
             [--max-drift 5]

MODEL.pt is `gradfit_dist export`'s file, TRAIN.h5 the data it was trained on (scripts/ase_import.py's file: x,
attribute numbers). The run starts from frame --frame of TRAIN.h5 with Maxwell-Boltzmann velocities at
--temperature K (seeded; no net momentum or rotation) and takes --steps steps of --dt fs. It writes DIR/nve.csv
(time in fs, potential, kinetic and total energy in eV, the shortest and longest bond in Å) and prints two checks:
- the total energy stays within --max-drift meV/atom of its start (an NVE run conserves it; a rough or
  non-conservative force field does not);
- every bond (a pair closer than 1.2x the sum of covalent radii in the start frame) stays within the range of its
  length over the training frames: beyond it the potential extrapolates.
Exit status 1 when a check fails. Bad input (a file that is no exported model or no data file of ase_import.py,
atoms the model was not trained on, an --out that is a file or whose nve.csv would be one of the inputs) is one
error line, exit status 1, before anything is written. Needs ASE (python3-ase), torch and h5py (run it with
/usr/bin/python3).
"""
import argparse
import csv
import os
import sys

import numpy as np

try:
    import h5py
    from ase import Atoms, units
    from ase.data import covalent_radii
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
    from ase.md.verlet import VelocityVerlet
except ImportError as error:
    sys.exit(f"md.py: {error.name} is missing: install python3-ase and python3-h5py and run this with /usr/bin/python3")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from ase_calculator import GradfitCalculator  # noqa: E402  (scripts/, the other tools)
from tool_files import same_file, short_reason  # noqa: E402

DATA_HINT = "make the file with scripts/ase_import.py"


def open_data(path, datasets=("x",)):
    """path opened read-only as a data file of scripts/ase_import.py holding `datasets`, each frames × 3 atoms (the
    same shape), with the attribute numbers of that many atoms where it has one; a one-line ValueError naming the
    file and what is wrong otherwise. plot.py uses it too."""
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a data file ({DATA_HINT})")
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path} is not a readable HDF5 data file ({short_reason(error)}; {DATA_HINT})") from None
    try:
        if "runs" in f:
            raise ValueError(f"{path} is a gradfit_dist results file, not a data file ({DATA_HINT})")
        for name in datasets:
            if not isinstance(f.get(name), h5py.Dataset):
                raise ValueError(f"{path}: no dataset {name} ({DATA_HINT})")
        shape = f["x"].shape
        if len(shape) != 2 or shape[0] == 0 or shape[1] == 0 or shape[1] % 3:
            raise ValueError(f"{path}: x of shape {shape}, not frames × 3 coordinates per atom ({DATA_HINT})")
        for name in datasets:
            if f[name].shape != shape:
                raise ValueError(f"{path}: {name} of shape {f[name].shape}, x of shape {shape}: not the same")
        if "numbers" in f.attrs and 3 * np.size(f.attrs["numbers"]) != shape[1]:
            raise ValueError(f"{path}: {np.size(f.attrs['numbers'])} numbers for x of {shape[1]} coordinates")
    except ValueError:
        f.close()
        raise
    except (OSError, RuntimeError, KeyError, TypeError) as error:  # HDF5's errors for a damaged file
        f.close()
        raise ValueError(f"{path}: cannot read it, a damaged file? ({short_reason(error)})") from None
    return f


def check_outputs(out, names, inputs):
    """A one-line ValueError unless the files `names` can be written in the folder `out` without writing over an
    input: inputs are (what, path) pairs ("TRAIN.h5", "data/train.h5"). Checked before anything is written."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file, not a folder")
    existing = os.path.dirname(os.path.abspath(out))  # where the folder would be made: its first existing ancestor
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"--out {out}: {existing} is a file, not a folder")
    for name in names:
        path = os.path.join(out, name)
        for what, given in inputs:
            if same_file(path, given):
                raise ValueError(f"--out {out}: writing {path} would write over the input {what} {given}")


def bonds_of(numbers, positions):
    """The pairs (i, j) closer than 1.2x the sum of their covalent radii."""
    pairs = []
    for i in range(len(numbers)):
        for j in range(i + 1, len(numbers)):
            limit = 1.2 * (covalent_radii[numbers[i]] + covalent_radii[numbers[j]])
            if np.linalg.norm(positions[i] - positions[j]) < limit:
                pairs.append((i, j))
    return pairs


def lengths(frames, pairs):
    """Bond lengths, frames × bonds, of frames (F × atoms × 3)."""
    i, j = np.array(pairs).T
    return np.linalg.norm(frames[:, i] - frames[:, j], axis=-1)


def training_ranges(path, pairs):
    """Each bond's shortest and longest length over the training frames, read a block at a time."""
    low, high = np.full(len(pairs), np.inf), np.full(len(pairs), -np.inf)
    with open_data(path) as f:
        for first in range(0, f["x"].shape[0], 65536):
            try:
                block = f["x"][first:first + 65536]
            except (OSError, RuntimeError) as error:  # a damaged dataset (its checksum, say)
                raise ValueError(f"{path}: cannot read x, a damaged file? ({short_reason(error)})") from None
            d = lengths(block.reshape(-1, f["x"].shape[1] // 3, 3), pairs)
            low, high = np.minimum(low, d.min(0)), np.maximum(high, d.max(0))
    return low, high


def start_atoms(path, frame, model):
    """Frame `frame` of the data file as Atoms with GradfitCalculator(model), checked against the model's atoms."""
    with open_data(path) as f:
        if "numbers" not in f.attrs:
            raise ValueError(f"{path}: no attribute 'numbers' ({DATA_HINT})")
        numbers = np.asarray(f.attrs["numbers"]).reshape(-1)
        if not 0 <= frame < f["x"].shape[0]:
            raise ValueError(f"--frame {frame}: {path} has frames 0 to {f['x'].shape[0] - 1}")
        positions = f["x"][frame].reshape(-1, 3)
    atoms = Atoms(numbers=numbers, positions=positions, pbc=False)
    atoms.calc = GradfitCalculator(model)
    atoms.calc.check_atoms(atoms)  # now, not at the first step: the atoms are the model's
    if not np.isfinite(positions).all():
        raise ValueError(f"{path}: frame {frame} has positions that are not finite")
    return atoms


def run(atoms, args, pairs):
    """Velocity Verlet from Maxwell-Boltzmann velocities: rows of time, Epot, Ekin, Etot, shortest and longest bond."""
    MaxwellBoltzmannDistribution(atoms, temperature_K=args.temperature, rng=np.random.default_rng(args.seed))
    Stationary(atoms)
    ZeroRotation(atoms)
    rows = []
    bond_low, bond_high = np.full(len(pairs), np.inf), np.full(len(pairs), -np.inf)

    def record():
        d = lengths(atoms.get_positions()[None], pairs)[0]
        bond_low[:], bond_high[:] = np.minimum(bond_low, d), np.maximum(bond_high, d)
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        rows.append((len(rows) * args.dt, epot, ekin, epot + ekin, d.min(), d.max()))

    record()
    with VelocityVerlet(atoms, timestep=args.dt * units.fs) as dynamics:  # `with`: it closes the log it opens
        for _ in range(args.steps):
            dynamics.run(1)
            record()
    return np.array(rows), bond_low, bond_high


def write_csv(path, rows):
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_fs", "potential_eV", "kinetic_eV", "total_eV", "shortest_bond_A", "longest_bond_A"])
        w.writerows(rows.tolist())
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("train")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--dt", type=float, default=0.5, help="fs")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=".")
    parser.add_argument("--max-drift", type=float, default=5.0, help="meV/atom")
    args = parser.parse_args()
    for bad, message in ((args.steps < 1, f"--steps {args.steps}: at least 1"),
                         (not args.dt > 0, f"--dt {args.dt:g}: a time step must be > 0 fs"),
                         (not args.temperature >= 0, f"--temperature {args.temperature:g}: must be >= 0 K")):
        if bad:
            sys.exit(f"md.py: {message}")
    try:
        check_outputs(args.out, ("nve.csv", "nve.csv.tmp"), [("MODEL.pt", args.model), ("TRAIN.h5", args.train)])
        atoms = start_atoms(args.train, args.frame, args.model)
        pairs = bonds_of(atoms.numbers, atoms.get_positions())
        if not pairs:
            raise ValueError(f"{args.train}: frame {args.frame} has no bonds (no two atoms closer than 1.2x their "
                             "covalent radii): nothing to check the MD against")
        low, high = training_ranges(args.train, pairs)
        rows, bond_low, bond_high = run(atoms, args, pairs)  # the calculator's errors are ValueErrors too
    except ValueError as error:
        sys.exit(f"md.py: {error}")
    try:
        os.makedirs(args.out, exist_ok=True)
        write_csv(os.path.join(args.out, "nve.csv"), rows)
    except OSError as error:
        sys.exit(f"md.py: cannot write {error.filename or args.out}: {error.strerror or short_reason(error)}")
    drift = np.abs(rows[:, 3] - rows[0, 3]).max() / len(atoms) * 1000
    print(f"NVE {args.steps * args.dt:g} fs ({args.steps} steps of {args.dt:g} fs) of {atoms.get_chemical_formula()} "
          f"from {args.temperature:g} K: total energy within {drift:.3f} meV/atom of its start "
          f"(limit {args.max_drift:g}); mean temperature {rows[:, 2].mean() / (1.5 * units.kB * len(atoms)):.0f} K")
    outside = [(p, bl, bh, lo, hi) for p, bl, bh, lo, hi in zip(pairs, bond_low, bond_high, low, high)
               if bl < lo or bh > hi]
    symbols = atoms.get_chemical_symbols()
    print(f"bonds: {len(pairs) - len(outside)} of {len(pairs)} stayed within their training range")
    for (i, j), bl, bh, lo, hi in outside:
        print(f"  bond {symbols[i]}{i}-{symbols[j]}{j}: {bl:.3f}-{bh:.3f} Å in the MD, {lo:.3f}-{hi:.3f} Å in training")
    print(f"wrote {os.path.join(args.out, 'nve.csv')}")
    if drift > args.max_drift or outside:
        failed = "energy drift above the limit" if drift > args.max_drift else "bonds left their training range"
        sys.exit("md.py: FAILED: " + failed)


if __name__ == "__main__":
    main()
