#!/usr/bin/env python3
"""Makes real molecular data for gradfit_dist: ethanol (9 atoms) in a GFN2-xTB molecular dynamics run, every frame
labelled with its GFN2-xTB energy and gradient.

Usage: make_data.py [--out DIR] [--frames 3000] [--train 2000] [--temperature 500] [--jobs 2]

Needs xtb (Debian's package `xtb`), numpy and h5py (`python3-h5py`; run it with an interpreter that imports them,
e.g. /usr/bin/python3). Minutes on 2 cores: the MD (0.5 fs steps, a frame every 5 fs, Berendsen thermostat at
--temperature K, the molecule free to rotate and translate) takes about a minute for 3000 frames, the labels
(one `xtb --grad` per frame, --jobs at a time) about 0.1 s a frame.

Writes to DIR (default: data/ beside this script):
  train.h5  the first --train frames     x (frames × 27, Å), grad = dE/dx (eV/Å, the negative forces),
  test.h5   the frames after them         value = E (eV), attributes numbers (atomic numbers) and units
The test frames come later in the trajectory than every training frame, as a held-out set should.
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
    import h5py
except ImportError:
    sys.exit("make_data.py: h5py is missing: install python3-h5py and run this with /usr/bin/python3")

HARTREE_EV = 27.211386245988  # CODATA 2018
BOHR_ANGSTROM = 0.529177210903
ETHANOL = [("C", -0.0014, 0.0, 0.0), ("C", 1.5132, 0.0, 0.0), ("O", 1.9883, 1.3442, 0.0),
           ("H", -0.3918, 1.0187, 0.0), ("H", -0.3918, -0.5093, 0.8821), ("H", -0.3918, -0.5093, -0.8821),
           ("H", 1.8847, -0.5175, 0.8869), ("H", 1.8847, -0.5175, -0.8869), ("H", 2.9483, 1.3142, 0.0)]
NUMBERS = {"H": 1, "C": 6, "O": 8}


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


def molecular_dynamics(work, frames, temperature):
    """The MD trajectory's frames (frames × atoms × 3, Å) and the symbols."""
    symbols = [a[0] for a in ETHANOL]
    write_xyz(os.path.join(work, "start.xyz"), symbols, [a[1:] for a in ETHANOL])
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


def write(path, symbols, positions, energies, gradients, source):
    with h5py.File(path + ".tmp", "w") as f:
        f["x"] = positions.reshape(len(positions), -1)
        f["grad"] = gradients.reshape(len(gradients), -1)
        f["value"] = energies
        f.attrs["numbers"] = np.array([NUMBERS[s] for s in symbols], dtype=np.int64)
        f.attrs["units"] = "x: Angstrom, grad: eV/Angstrom (dE/dx, the negative forces), value: eV"
        f.attrs["source"] = source
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if shutil.which("xtb") is None:
        sys.exit("make_data.py: xtb is missing: install Debian's package xtb")
    if not 0 < args.train < args.frames:
        sys.exit(f"make_data.py: --train must be between 0 and --frames ({args.frames}), got {args.train}")
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        print(f"GFN2-xTB MD of ethanol at {args.temperature:g} K, {args.frames} frames 5 fs apart", flush=True)
        symbols, positions = molecular_dynamics(work, args.frames, args.temperature)
        print(f"labelling {args.frames} frames with xtb --grad, {args.jobs} at a time", flush=True)
        jobs = [(i, symbols, positions[i], work) for i in range(args.frames)]
        with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
            labels = list(pool.map(label, jobs, chunksize=16))
    energies = np.array([e for e, _ in labels])
    gradients = np.array([g for _, g in labels])
    source = f"GFN2-xTB (xtb) NVT MD of ethanol at {args.temperature:g} K, 0.5 fs steps, a frame every 5 fs"
    n = args.train
    write(os.path.join(args.out, "train.h5"), symbols, positions[:n], energies[:n], gradients[:n],
          source + f", frames 0-{n - 1}")
    write(os.path.join(args.out, "test.h5"), symbols, positions[n:], energies[n:], gradients[n:],
          source + f", frames {n}-{args.frames - 1}")
    print(f"wrote {args.out}/train.h5 ({n} frames) and {args.out}/test.h5 ({args.frames - n} frames)")


if __name__ == "__main__":
    main()
