#!/usr/bin/env python3
"""A large frames-layout file for the scale benchmark of training on frames (bench/bench_frames_scale.sh): EMT Cu-Ag
in small periodic FCC cells, every frame the ideal sites displaced at random and labelled with ASE's EMT energy and
forces, written straight into scripts/ase_import.py's frames layout (no extended XYZ in between).

Usage: make_scale_frames.py OUT.h5 [--frames 150000] [--seed 0] [--jobs 2] [--sigma 0.12] [--overwrite]

Frame f (drawn from numpy's generator seeded with (--seed, f), so any --jobs gives the same file) is one of three
cells, f mod 3: 2x2x2 conventional FCC cells (32 atoms), 3x3x1 (36) or 5x2x1 (40), the last two thinner than the
cutoffs (an atom sees several images of a neighbour). Ag on 15-35 % of the sites at random, the rest Cu; the lattice
constant 3.59 + 0.55 x (x the Ag fraction: 3.67-3.78 A, the range of experiments/materials' EMT minima); every atom
displaced by a Gaussian of --sigma A per component. Mean 36 atoms a frame: 150,000 frames hold 5.4 million atoms.
The EMT is experiments/materials/make_data.py's vectorised one; the first frame of every block of 2000 is checked
against ase.calculators.emt.EMT (the script stops above 1e-8).

Not molecular dynamics: independent displaced lattices (the forces' RMS is ~1.5 eV/A per component at --sigma 0.12,
twice the MD's), meant for the memory and throughput of training at scale; experiments/materials has the MD data
for accuracy. The file appears whole or not at all (a temporary, renamed).
"""
import argparse
import concurrent.futures
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402 (after the thread settings)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "experiments", "materials"))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
try:
    import h5py  # noqa: E402
    from ase.build import bulk  # noqa: E402
    from ase.calculators.emt import EMT  # noqa: E402
    from make_data import Tables, candidate_pairs, emt  # noqa: E402
    from ase_import import FRAMES_UNITS  # noqa: E402
except ImportError as error:
    sys.exit(f"make_scale_frames.py: {error.name} is missing: run this with /usr/bin/python3 (python3-ase, h5py)")

REPEATS = [(2, 2, 2), (3, 3, 1), (5, 2, 1)]  # conventional FCC cells along a, b, c: 32, 36, 40 atoms
CU, AG = 29, 47
BLOCK = 2000  # frames a job makes at a time
TOLERANCE = 1e-8


def frame(f, seed, sigma, tables):
    """Frame f: numbers, positions, cell, energy, forces."""
    rng = np.random.default_rng([seed, f])
    atoms = bulk("Cu", "fcc", a=1.0, cubic=True).repeat(REPEATS[f % len(REPEATS)])
    fraction = rng.uniform(0.15, 0.35)
    numbers = np.full(len(atoms), CU)
    numbers[rng.choice(len(atoms), round(fraction * len(atoms)), replace=False)] = AG
    scale = 3.59 + 0.55 * fraction
    cell = atoms.cell.array * scale
    positions = atoms.positions * scale + rng.normal(0.0, sigma, (len(atoms), 3))
    species = (numbers == AG).astype(int)
    pairs = candidate_pairs(positions, cell, tables.rc_list)
    energy, forces, _ = emt(tables, species, positions, cell, *pairs)
    return numbers, positions, cell, energy, forces


def block(job):
    """Frames [begin, end), checked against ASE's EMT on the first."""
    begin, end, seed, sigma = job
    tables = Tables([CU, AG])
    made = [frame(f, seed, sigma, tables) for f in range(begin, end)]
    numbers, positions, cell, energy, forces = made[0]
    atoms = bulk("Cu", "fcc", a=1.0, cubic=True).repeat(REPEATS[begin % len(REPEATS)])
    atoms.set_cell(cell)
    atoms.positions, atoms.numbers, atoms.pbc = positions, numbers, True
    atoms.calc = EMT()
    worst = max(abs(atoms.get_potential_energy() - energy), np.abs(atoms.get_forces() - forces).max())
    if worst > TOLERANCE:
        raise RuntimeError(f"frame {begin}: the vectorised EMT differs from ASE's by {worst:.3g}")
    return made


def write(path, blocks, frames):
    with h5py.File(path, "w") as f:
        made = [m for b in blocks for m in b]
        f["positions"] = np.concatenate([m[1] for m in made])
        f["grad"] = -np.concatenate([m[4] for m in made])
        f["numbers"] = np.concatenate([m[0] for m in made]).astype(np.int64)
        f["atoms"] = np.array([len(m[0]) for m in made], dtype=np.int64)
        f["value"] = np.array([m[3] for m in made])
        f["cell"] = np.stack([m[2].reshape(9) for m in made])
        f["pbc"] = np.ones((frames, 3), dtype=np.int8)
        f.attrs["layout"] = "frames"
        f.attrs["units"] = FRAMES_UNITS
        f.attrs["source"] = "bench/make_scale_frames.py: EMT Cu-Ag, displaced FCC lattices"
        f.attrs["frames"] = frames
        return int(f["numbers"].shape[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--frames", type=int, default=150000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sigma", type=float, default=0.12)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if args.frames < 1 or args.jobs < 1 or not 0 <= args.sigma < 0.5:
        sys.exit("make_scale_frames.py: needs --frames >= 1, --jobs >= 1 and 0 <= --sigma < 0.5")
    if os.path.exists(args.out) and not args.overwrite:
        sys.exit(f"make_scale_frames.py: {args.out} exists: give --overwrite to replace it")
    began = time.perf_counter()
    jobs = [(b, min(b + BLOCK, args.frames), args.seed, args.sigma) for b in range(0, args.frames, BLOCK)]
    with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
        blocks = list(pool.map(block, jobs))
    temporary = f"{args.out}.tmp-{os.getpid()}"
    try:
        atoms = write(temporary, blocks, args.frames)
        os.replace(temporary, args.out)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print(f"wrote {args.out}: {args.frames} frames, {atoms} atoms, {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
