#!/usr/bin/env python3
"""Makes real molecular data for gradfit_dist: ethanol (9 atoms) in a GFN2-xTB molecular dynamics run, every frame
labelled with its GFN2-xTB energy and forces, written as an extended XYZ file (what ASE and most codes read).

Usage: make_data.py [--out DIR] [--frames 3000] [--temperature 500] [--jobs 2] [--molecule ethanol] [--overwrite]

Needs xtb (Debian's package `xtb`), numpy and ASE (`python3-ase`; run it with an interpreter that imports them,
e.g. /usr/bin/python3). Minutes on 2 cores: the MD (0.5 fs steps, a frame every 5 fs, Berendsen thermostat at
--temperature K, the molecule free to rotate and translate) takes about a minute for 3000 frames, the labels
(one `xtb --grad` per frame, --jobs at a time) about 0.1 s a frame.

Writes DIR/ethanol_md.extxyz (default DIR: data/ beside this script): every frame's positions (Å), energy (eV) and
forces (eV/Å), in the order of the trajectory. --molecule NAME starts from another molecule of ASE's G2 set
(ase.build.molecule: CH3CONH2 for acetamide, C6H6, ...) and writes DIR/NAME_md.extxyz. scripts/ase_import.py turns
it into gradfit_dist's HDF5 files (see docs/molecules.md and run.sh beside this script). An existing
DIR/NAME_md.extxyz (minutes of xtb, and the frames the HDF5 files were imported from) is kept: the script stops with
one line before any work unless --overwrite is given. Bad arguments (a DIR that is a file, --frames or --jobs below
1, --temperature not above 0, a --molecule not in the G2 set) are one line too.
"""
import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

try:
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
except ImportError:
    sys.exit("make_data.py: ASE is missing: install python3-ase and run this with /usr/bin/python3")

HARTREE_EV = 27.211386245988  # CODATA 2018
BOHR_ANGSTROM = 0.529177210903
ETHANOL = [("C", -0.0014, 0.0, 0.0), ("C", 1.5132, 0.0, 0.0), ("O", 1.9883, 1.3442, 0.0),
           ("H", -0.3918, 1.0187, 0.0), ("H", -0.3918, -0.5093, 0.8821), ("H", -0.3918, -0.5093, -0.8821),
           ("H", 1.8847, -0.5175, 0.8869), ("H", 1.8847, -0.5175, -0.8869), ("H", 2.9483, 1.3142, 0.0)]


def write_xyz(path, symbols, positions, comment=""):
    with open(path, "w") as f:
        f.write(f"{len(symbols)}\n{comment}\n")
        for s, p in zip(symbols, positions):
            f.write(f"{s} {p[0]:.10f} {p[1]:.10f} {p[2]:.10f}\n")


def run_xtb(args, cwd):
    """Runs xtb in cwd with one thread; raises with xtb's last lines on failure."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_STACKSIZE="200M")
    done = subprocess.run(["xtb"] + args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"xtb {' '.join(args)} failed in {cwd}:\n" + "\n".join(done.stdout.splitlines()[-15:]))


def start_geometry(name):
    """The symbols and positions (Å) the MD starts from: ETHANOL, or ASE's G2 molecule `name`."""
    if name == "ethanol":
        return [a[0] for a in ETHANOL], [a[1:] for a in ETHANOL]
    from ase.build import molecule
    atoms = molecule(name)
    return atoms.get_chemical_symbols(), atoms.positions.tolist()


def molecular_dynamics(work, frames, temperature, name):
    """The MD trajectory's frames (frames × atoms × 3, Å) and the symbols."""
    symbols, start = start_geometry(name)
    write_xyz(os.path.join(work, "start.xyz"), symbols, start)
    step_fs, dump_fs = 0.5, 5.0
    with open(os.path.join(work, "md.inp"), "w") as f:
        f.write(f"$md\n   temp={temperature}\n   time={frames * dump_fs / 1000 + 0.5}\n   dump={dump_fs}\n"
                f"   step={step_fs}\n   hmass=1\n   shake=0\n   velo=false\n   nvt=true\n$end\n")
    run_xtb(["start.xyz", "--md", "--input", "md.inp", "--gfn", "2"], work)
    positions = []
    with open(os.path.join(work, "xtb.trj")) as f:
        lines = f.read().splitlines()
    n = len(symbols)
    for start in range(0, len(lines) - n - 1, n + 2):
        block = lines[start + 2:start + 2 + n]
        positions.append([[float(v) for v in line.split()[1:4]] for line in block])
    if len(positions) < frames:
        raise RuntimeError(f"the MD wrote {len(positions)} frames, fewer than {frames}")
    return symbols, np.array(positions[:frames])


def label(job):
    """GFN2-xTB energy (eV) and gradient (eV/Å) of one frame, in a folder of its own."""
    index, symbols, positions, root = job
    work = os.path.join(root, f"frame{index}")
    os.makedirs(work)
    write_xyz(os.path.join(work, "frame.xyz"), symbols, positions)
    run_xtb(["frame.xyz", "--grad", "--gfn", "2"], work)
    with open(os.path.join(work, "gradient")) as f:
        lines = f.read().splitlines()
    energy = float(lines[1].split("=")[2].split()[0])  # "  cycle =  1    SCF energy =  -11.39 |dE/dxyz| = ..."
    n = len(symbols)
    gradient = np.array([[float(v.replace("D", "E")) for v in line.split()] for line in lines[2 + n:2 + 2 * n]])
    shutil.rmtree(work)
    return energy * HARTREE_EV, gradient * HARTREE_EV / BOHR_ANGSTROM


def write_extxyz(path, symbols, positions, energies, gradients, source):
    """The frames with their energies and forces (-gradients), written whole to a temporary and renamed."""
    frames = []
    for p, e, g in zip(positions, energies, gradients):
        atoms = Atoms(symbols, positions=p, pbc=False)
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=-g)
        atoms.info["source"] = source
        frames.append(atoms)
    ase.io.write(path + ".tmp", frames, format="extxyz")
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--molecule", default="ethanol", help="ethanol, or a name of ASE's G2 set (CH3CONH2, ...)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR/NAME_md.extxyz")
    args = parser.parse_args()
    path = os.path.join(args.out, f"{args.molecule}_md.extxyz")
    if args.molecule != "ethanol":
        from ase.collections import g2
        if args.molecule not in g2.names:
            sys.exit(f"make_data.py: --molecule {args.molecule}: not ethanol nor a name of ASE's G2 set")
    if args.frames < 1:
        sys.exit(f"make_data.py: --frames must be >= 1, got {args.frames}")
    if args.jobs < 1:
        sys.exit(f"make_data.py: --jobs must be >= 1, got {args.jobs}")
    if not args.temperature > 0:
        sys.exit(f"make_data.py: --temperature must be > 0 K, got {args.temperature:g}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        sys.exit(f"make_data.py: --out {args.out} is a file, not a folder")
    if os.path.isdir(path):
        sys.exit(f"make_data.py: {path} is a folder: remove it or give another --out")
    if os.path.exists(path) and not args.overwrite:
        sys.exit(f"make_data.py: {path} exists: give --overwrite to replace it (its frames are lost), or another "
                 "--out")
    if shutil.which("xtb") is None:
        sys.exit("make_data.py: xtb is missing: install Debian's package xtb")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        sys.exit(f"make_data.py: --out {args.out}: cannot make the folder ({error.strerror})")
    with tempfile.TemporaryDirectory() as work:
        print(f"GFN2-xTB MD of {args.molecule} at {args.temperature:g} K, {args.frames} frames 5 fs apart", flush=True)
        symbols, positions = molecular_dynamics(work, args.frames, args.temperature, args.molecule)
        print(f"labelling {args.frames} frames with xtb --grad, {args.jobs} at a time", flush=True)
        jobs = [(i, symbols, positions[i], work) for i in range(args.frames)]
        with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
            labels = list(pool.map(label, jobs, chunksize=16))
    energies = np.array([e for e, _ in labels])
    gradients = np.array([g for _, g in labels])
    source = f"GFN2-xTB (xtb) NVT MD of {args.molecule} at {args.temperature:g} K, 0.5 fs steps, a frame every 5 fs"
    write_extxyz(path, symbols, positions, energies, gradients, source)
    print(f"wrote {path}: {args.frames} frames with energies and forces")


if __name__ == "__main__":
    main()
