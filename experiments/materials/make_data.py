#!/usr/bin/env python3
"""Makes periodic-metal data for gradfit_dist's frames layout: Langevin molecular dynamics of Cu-Ag alloys (ASE's
EMT potential) in FCC supercells of 32 and 108 sites, some with a vacancy, each cell strained, every sampled frame
labelled with its EMT energy, forces and stress, written as extended XYZ, train and test from separate trajectories.

Usage: make_data.py [--out DIR] [--seed 0] [--frames 3000] [--per-trajectory 100] [--test-every 5] [--jobs 2]
                    [--temperature 600 1200] [--solute 0.15 0.35] [--strain 0.02] [--overwrite]

The trajectories (ceil(--frames / --per-trajectory) of them, the last one shorter where that does not divide) cycle
through four kinds of cell, trajectory k being kind k mod 4:
  0: 2x2x2 conventional FCC cells, 32 atoms     1: 3x3x3, 108 atoms
  2: 2x2x2 less one atom (a vacancy), 31 atoms  3: 3x3x3 less one atom, 107 atoms
Each has its own random alloy (a fraction of the sites Ag drawn uniformly from --solute's range, those sites drawn
at random, the rest Cu; the vacancy at a random site), its lattice constant the one of least EMT energy for that
alloy on the ideal sites at 0 K (the cubic cell scaled as a whole; no thermal expansion, so the cells are under a
few GPa of thermal pressure), then the cell strained by I + e, e symmetric with diagonal entries uniform in
+-STRAIN and off-diagonal ones in +-STRAIN/2 (so the stress differs from trajectory to trajectory), and its own
temperature. Langevin MD (ase.md.langevin, 5 fs steps, friction 0.01 /fs, the centre of mass fixed) from
Maxwell-Boltzmann velocities: 200 steps (1 ps) of equilibration, then a frame every 25 steps (125 fs: the force
autocorrelation is within +-0.1 there, past its dip to -0.4 at 80 fs), --per-trajectory frames. Positions are
written as the MD has them, not wrapped into the cell (atoms on the cell's faces step outside it).

The split: trajectory k is a test trajectory when k mod --test-every is --test-every - 1 (4, 9, 14, ...: every kind
of cell among them at the defaults), or the last one when that picks none; the others are training trajectories.
Test frames are thus whole trajectories of their own, with their own alloys, strains and temperatures, never
interleaved with training frames. The temperatures are --temperature's range spread evenly over the training
trajectories and, separately, over the test ones (linspace), each list in a random order, so both sets span it.

Everything is drawn from numpy generators seeded with (--seed, k) per trajectory: the same arguments give the same
files byte for byte whatever --jobs (trajectories run --jobs at a time in processes); --frames and --per-trajectory
change the plan (the temperatures are spread over the trajectories there are), so other frames.

The MD runs on a vectorised implementation of ASE's EMT (the formulas and parameters of ase.calculators.emt, with a
neighbour list kept with a skin): ASE's own is a Python loop over pairs, 20-70 ms a step here against 1.5-5 ms.
Every 25th written frame of each trajectory (the first included) is computed again with ase.calculators.emt.EMT,
and the script stops if the energy, a force or a stress component differs by more than 1e-8 (eV, eV/A, eV/A^3):
the labels are ASE's EMT to rounding (~1e-11).

Writes DIR/train.extxyz and DIR/test.extxyz (default DIR: data/ beside this script): each frame's cell, pbc,
positions (A), energy (eV), forces (eV/A), stress (eV/A^3), and in its info the trajectory (k) and its
temperature (K). scripts/ase_import.py --layout frames turns each into gradfit_dist's frames layout (README.md
beside this script). Existing outputs are kept unless --overwrite. Needs numpy and ASE (/usr/bin/python3 with
python3-ase). About 2 minutes on 2 cores at the defaults.
"""
import argparse
import concurrent.futures
import math
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per process: the trajectories run --jobs at a time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402 (after the thread settings)

try:
    import ase.io  # noqa: E402
    from ase import units  # noqa: E402
    from ase.build import bulk  # noqa: E402
    from ase.calculators.calculator import Calculator, all_changes  # noqa: E402
    from ase.calculators.emt import EMT, beta, parameters  # noqa: E402
    from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402
    from ase.data import atomic_numbers, chemical_symbols  # noqa: E402
    from ase.md.langevin import Langevin  # noqa: E402
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary  # noqa: E402
except ImportError:
    sys.exit("make_data.py: ASE is missing: install python3-ase and run this with /usr/bin/python3")

HOST, SOLUTE = "Cu", "Ag"  # the alloy: a fraction of the sites SOLUTE (--solute), the rest HOST
KINDS = [(2, False), (3, False), (2, True), (3, True)]  # (conventional cells along each axis, a vacancy)
STEP_FS, INTERVAL, EQUILIBRATION, FRICTION = 5.0, 25, 200, 0.01  # fs, steps, steps, 1/fs
CHECK_EVERY = 25  # written frames between two checks against ASE's EMT
TOLERANCE = 1e-8  # eV, eV/A, eV/A^3
SKIN = 1.0  # A: the neighbour list holds the pairs within rc + SKIN, rebuilt when an atom has moved SKIN / 2


class Tables:
    """ASE EMT's parameters per element (its initialize(), asap_cutoff False: the cutoff from the whole table)."""

    def __init__(self, elements):
        maxseq = max(p[1] for p in parameters.values()) * units.Bohr
        self.rc = rc = beta * maxseq * 0.5 * (math.sqrt(3) + math.sqrt(4))
        rr = rc * 2 * math.sqrt(4) / (math.sqrt(3) + math.sqrt(4))
        self.acut = np.log(9999.0) / (rr - rc)
        self.rc_list = rc + 0.5
        rows = []
        for z in elements:
            p = parameters[chemical_symbols[z]]
            s0, eta2, kappa = p[1] * units.Bohr, p[3] / units.Bohr, p[4] / units.Bohr
            gamma1 = gamma2 = 0.0
            for i, n in enumerate([12, 6, 24]):
                r = s0 * beta * math.sqrt(i + 1)
                x = n / (12 * (1.0 + math.exp(self.acut * (r - rc))))
                gamma1 += x * math.exp(-eta2 * (r - beta * s0))
                gamma2 += x * math.exp(-kappa / beta * (r - beta * s0))
            rows.append((p[0], s0, p[2], eta2, kappa, p[5] / units.Bohr, p[6] / units.Bohr ** 3, gamma1, gamma2))
        (self.E0, self.s0, self.V0, self.eta2, self.kappa, self.lam, self.n0, self.gamma1,
         self.gamma2) = np.array(rows).T


def candidate_pairs(positions, cell, cutoff):
    """Every ordered pair (i, j, offset) with |x_j - x_i + offset| < cutoff, offset a lattice vector (Cartesian),
    i != j or offset != 0: all images within the shifts that the cutoff can reach from atoms wrapped into the cell."""
    inverse = np.linalg.inv(cell)
    fractional = positions @ inverse
    whole = np.floor(fractional)
    wrapped = (fractional - whole) @ cell
    reach = np.ceil(cutoff * np.linalg.norm(inverse, axis=0)).astype(int)  # |b*_k| = column k of the inverse
    grid = np.stack(np.meshgrid(*[np.arange(-n, n + 1) for n in reach], indexing="ij"), -1).reshape(-1, 3)
    d = wrapped[None, None, :, :] - wrapped[None, :, None, :] + (grid @ cell)[:, None, None, :]
    r2 = np.einsum("sijk,sijk->sij", d, d)
    s, i, j = np.nonzero((r2 < cutoff * cutoff) & (r2 > 0))
    offsets = (grid[s] - whole[j] + whole[i]) @ cell  # for the positions as given, not wrapped
    return i, j, offsets


class FastEMT(Calculator):
    """ASE's EMT (ase.calculators.emt.EMT, asap_cutoff False) vectorised over a full pair list: energy, forces and
    stress equal to ASE's to ~1e-13. The cell must stay as it is between calls (NVT MD)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self):
        super().__init__()
        self.listed = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        numbers, positions, cell = self.atoms.numbers, self.atoms.positions, self.atoms.cell.array
        if self.listed is None or "numbers" in system_changes or "cell" in system_changes:
            elements = sorted(set(numbers))
            self.tables, self.species = Tables(elements), np.searchsorted(elements, numbers)
            self.listed = None
        if self.listed is None or np.linalg.norm(positions - self.listed, axis=1).max() > SKIN / 2:
            self.pairs = candidate_pairs(positions, cell, self.tables.rc_list + SKIN)
            self.listed = positions.copy()
        energy, forces, stress = emt(self.tables, self.species, positions, cell, *self.pairs)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces, "stress": stress}


def emt(t, species, positions, cell, i, j, offsets):
    """Energy, forces and stress (Voigt, eV/A^3) of ASE's EMT from candidate pairs: ASE's interact1 and interact2
    per ordered pair (each unordered pair of ASE's half list is two of them here)."""
    d = positions[j] - positions[i] + offsets
    r = np.sqrt(np.einsum("pk,pk->p", d, d))
    keep = r < t.rc_list
    i, j, d, r = i[keep], j[keep], d[keep], r[keep]
    x = np.exp(t.acut * (r - t.rc))
    theta = 1.0 / (1.0 + x)
    si, sj = species[i], species[j]
    ksi = t.n0[sj] / t.n0[si]
    n = len(species)
    pair = 0.5 * t.V0[si] * np.exp(-t.kappa[sj] * (r / beta - t.s0[sj])) * ksi / t.gamma2[si] * theta
    density = np.exp(-t.eta2[sj] * (r - beta * t.s0[sj])) * ksi * theta / t.gamma1[si]
    sigma1 = np.bincount(i, density, n)
    ds = -np.log(sigma1 / 12) / (beta * t.eta2[species])
    lx = t.lam[species] * ds
    ly = np.exp(-lx)
    z = 6 * t.V0[species] * np.exp(-t.kappa[species] * ds)
    deds = (lx * ly * t.E0[species] * t.lam[species] + t.kappa[species] * z) / (sigma1 * beta * t.eta2[species])
    energy = float(np.sum(t.E0[species] * ((1 + lx) * ly - 1) + z) - pair.sum())
    g = (pair * t.kappa[sj] / beta + pair * t.acut * theta * x) / r
    h = density * deds[i]
    h = (h * t.eta2[sj] + h * t.acut * theta * x) / r
    c = (g - h)[:, None] * d
    forces = np.stack([np.bincount(i, c[:, k], n) - np.bincount(j, c[:, k], n) for k in range(3)], axis=1)
    s = -(d.T @ c)
    s = -0.5 * (s + s.T) / abs(np.linalg.det(cell))
    return energy, forces, s.flat[[0, 4, 8, 5, 2, 1]]


def lattice_constant(atoms):
    """The lattice constant of least EMT energy at 0 K for these atoms on the ideal sites of a lattice of constant
    1 (the cubic cell scaled as a whole; golden-section search between 3.4 and 4.2 A)."""
    cell, fractional = atoms.cell.array.copy(), atoms.get_scaled_positions()

    def energy(a):
        trial = atoms.copy()
        trial.set_cell(cell * a)
        trial.set_scaled_positions(fractional)
        trial.calc = FastEMT()
        return trial.get_potential_energy()

    low, high = 3.4, 4.2
    ratio = (math.sqrt(5) - 1) / 2
    while high - low > 1e-6:
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if energy(a) < energy(b):
            high = b
        else:
            low = a
    return (low + high) / 2


def start(k, seed, strain, solute):
    """Trajectory k's cell: the kind's supercell, the alloy, the vacancy, the lattice constant, the strain."""
    rng = np.random.default_rng([seed, k])
    repeat, vacancy = KINDS[k % len(KINDS)]
    atoms = bulk(HOST, "fcc", a=1.0, cubic=True).repeat(repeat)
    sites = len(atoms)
    fraction = rng.uniform(*solute)
    atoms.numbers[rng.choice(sites, round(fraction * sites), replace=False)] = atomic_numbers[SOLUTE]
    if vacancy:
        del atoms[int(rng.integers(sites))]
    a0 = lattice_constant(atoms)
    e = np.diag(rng.uniform(-strain, strain, 3))
    upper = np.triu(rng.uniform(-strain / 2, strain / 2, (3, 3)), 1)
    e += upper + upper.T
    atoms.set_cell(atoms.cell.array * a0 @ (np.eye(3) + e), scale_atoms=True)
    atoms.pbc = True
    return atoms, rng, a0


def trajectory(job):
    """Runs trajectory k; returns its frames (numbers, positions, cell, energy, forces, stress) and a summary."""
    k, seed, frames, temperature, strain, solute = job
    began = time.perf_counter()
    atoms, rng, a0 = start(k, seed, strain, solute)
    sites = atoms.positions.copy()
    atoms.calc = FastEMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    dynamics = Langevin(atoms, STEP_FS * units.fs, temperature_K=temperature, friction=FRICTION / units.fs,
                        fixcm=True, rng=rng)
    dynamics.run(EQUILIBRATION)
    written, kinetic, worst = [], [], 0.0
    for f in range(frames):
        dynamics.run(INTERVAL)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        stress = atoms.get_stress()
        if f % CHECK_EVERY == 0:
            reference = atoms.copy()
            reference.calc = EMT()
            worst = max(worst, abs(reference.get_potential_energy() - energy),
                        np.abs(reference.get_forces() - forces).max(), np.abs(reference.get_stress() - stress).max())
        written.append((atoms.numbers.copy(), atoms.positions.copy(), atoms.cell.array.copy(), energy,
                        forces.copy(), stress.copy()))
        kinetic.append(atoms.get_temperature())
    displacement = atoms.positions - sites
    displacement -= displacement.mean(axis=0)
    summary = {"k": k, "formula": atoms.get_chemical_formula(), "temperature": temperature, "a0": a0,
               "measured": np.mean(kinetic),
               "rms_displacement": float(np.sqrt((displacement ** 2).sum(axis=1).mean())),
               "hopped": int((np.linalg.norm(displacement, axis=1) > 1.0).sum()), "worst": worst,
               "seconds": time.perf_counter() - began}
    return written, summary


def plan(args):
    """[(k, seed, frames, temperature, strain, solute range)] for every trajectory, and the set of test trajectories."""
    count = math.ceil(args.frames / args.per_trajectory)
    test = [k for k in range(count) if k % args.test_every == args.test_every - 1] or [count - 1]
    train = [k for k in range(count) if k not in test]
    rng = np.random.default_rng([args.seed, 1 << 20])  # the temperatures' order, apart from every trajectory's draws
    temperature = {}
    for group in (train, test):
        levels = np.linspace(args.temperature[0], args.temperature[1], len(group)) if group else []
        temperature.update(zip(group, rng.permutation(levels)))
    jobs = []
    for k in range(count):
        frames = min(args.per_trajectory, args.frames - k * args.per_trajectory)
        jobs.append((k, args.seed, frames, float(temperature[k]), args.strain, tuple(args.solute)))
    return jobs, set(test)


def write_extxyz(path, frames):
    """The frames with their energies, forces and stress, written whole to a temporary and renamed."""
    images = []
    for numbers, positions, cell, energy, forces, stress, info in frames:
        atoms = ase.Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        atoms.info.update(info)
        images.append(atoms)
    ase.io.write(path + ".tmp", images, format="extxyz")
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--per-trajectory", type=int, default=100)
    parser.add_argument("--test-every", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--temperature", type=float, nargs=2, default=[600.0, 1200.0], metavar=("LOW", "HIGH"))
    parser.add_argument("--strain", type=float, default=0.02)
    parser.add_argument("--solute", type=float, nargs=2, default=[0.15, 0.35], metavar=("LOW", "HIGH"))
    parser.add_argument("--overwrite", action="store_true", help="replace existing DIR/train.extxyz, test.extxyz")
    args = parser.parse_args()
    if args.frames < 2 or args.per_trajectory < 1 or args.frames <= args.per_trajectory:
        sys.exit("make_data.py: --frames must exceed --per-trajectory (at least one training and one test "
                 f"trajectory), got {args.frames} and {args.per_trajectory}")
    if args.test_every < 2 or args.jobs < 1:
        sys.exit(f"make_data.py: --test-every must be >= 2 and --jobs >= 1, got {args.test_every}, {args.jobs}")
    if not 0 < args.temperature[0] <= args.temperature[1]:
        sys.exit(f"make_data.py: --temperature LOW HIGH needs 0 < LOW <= HIGH, got {args.temperature}")
    if not 0 <= args.strain < 0.2:
        sys.exit(f"make_data.py: --strain must be in [0, 0.2), got {args.strain}")
    if not 0 <= args.solute[0] <= args.solute[1] <= 1:
        sys.exit(f"make_data.py: --solute LOW HIGH needs 0 <= LOW <= HIGH <= 1, got {args.solute}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        sys.exit(f"make_data.py: --out {args.out} is a file, not a folder")
    paths = {name: os.path.join(args.out, f"{name}.extxyz") for name in ("train", "test")}
    for path in paths.values():
        if os.path.exists(path) and not args.overwrite:
            sys.exit(f"make_data.py: {path} exists: give --overwrite to replace it, or another --out")
    os.makedirs(args.out, exist_ok=True)
    jobs, test = plan(args)
    print(f"EMT Langevin MD of {HOST}-{SOLUTE} ({args.solute[0]:g}-{args.solute[1]:g} {SOLUTE}): {len(jobs)} "
          f"trajectories "
          f"({len(test)} for the test), {args.frames} frames, {args.temperature[0]:g}-{args.temperature[1]:g} K, "
          f"{args.jobs} at a time", flush=True)
    began = time.perf_counter()
    sets = {"train": [], "test": []}
    summaries = []
    with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
        for written, summary in pool.map(trajectory, jobs):
            if summary["worst"] > TOLERANCE:
                sys.exit(f"make_data.py: trajectory {summary['k']}: the vectorised EMT differs from ASE's by "
                         f"{summary['worst']:.3g}")
            info = {"trajectory": summary["k"], "temperature": summary["temperature"]}
            name = "test" if summary["k"] in test else "train"
            sets[name] += [frame + (info,) for frame in written]
            summaries.append(summary)
    seconds = time.perf_counter() - began
    for s in summaries:
        print(f"  trajectory {s['k']:3d} ({'test' if s['k'] in test else 'train'}): {s['formula']}, "
              f"a0 {s['a0']:.4f} A, {s['temperature']:6.1f} K (measured {s['measured']:6.1f} K), rms displacement "
              f"from the sites at the end {s['rms_displacement']:.2f} A ({s['hopped']} atoms beyond 1 A), "
              f"{s['seconds']:.1f} s")
    worst = max(s["worst"] for s in summaries)
    print(f"MD {seconds:.1f} s; the vectorised EMT within {worst:.1e} of ASE's EMT on the frames checked")
    for name, frames in sets.items():
        write_extxyz(paths[name], frames)
        atoms = sum(len(frame[0]) for frame in frames)
        print(f"wrote {paths[name]}: {len(frames)} frames, {atoms} atoms")


if __name__ == "__main__":
    main()
