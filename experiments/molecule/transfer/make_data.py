#!/usr/bin/env python3
"""GFN2-xTB molecular dynamics of several molecules for the transfer example (run.sh beside this script): for each
molecule named (ASE's G2 set, or 1-propanol), one NVT run (Berendsen thermostat at --temperature K, 0.5 fs steps,
a frame kept every --every fs), every kept frame labelled with its GFN2-xTB energy and forces, written as
DIR/NAME_md.extxyz.

Usage: make_data.py [--out DIR] [--molecules CH3OH,CH3CH2OH,...] [--frames 400] [--every 20] [--temperature 500]
                    [--jobs 2] [--overwrite]

The MD, the labels and the file format are those of ../make_data.py (whose helpers this script imports); what
differs is the spacing of the frames (--every, 20 fs by default against its 5 fs) and several molecules at once.
At 5 fs apart, 400 frames are 2 ps of one trajectory: an alcohol's OH group may not turn once in them, and a
model then meets the later frames' conformers for the first time. 20 fs apart the same labels span 8 ps (the
MD is cheap next to the labels: a few ms a step). The molecules run --jobs at a time, each xtb on one thread.

Needs xtb (Debian's package `xtb`), numpy and ASE (/usr/bin/python3 with python3-ase). An existing
DIR/NAME_md.extxyz is kept (one line says so) unless --overwrite. xtb draws the starting velocities anew each
run, so another run gives other frames.
"""
import argparse
import concurrent.futures
import importlib.util
import os
import shutil
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("molecule_make_data", os.path.join(HERE, "..", "make_data.py"))
base = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = base  # so that the worker processes find its functions
_spec.loader.exec_module(base)  # run_xtb, write_xyz, start_geometry, label, write_extxyz (exits if ASE is missing)

STEP_FS = 0.5
# Molecules beyond ASE's G2 set: 1-propanol (CH3CH2CH2OH, anti), relaxed with GFN2-xTB (xtb --opt), Å.
EXTRA = {"1-propanol": [
    ("C", 0.0, -1.2576, -0.2615), ("C", 0.0, 0.0092, 0.5827), ("C", 0.0, 1.2658, -0.2815), ("O", 0.0, 2.3934, 0.5682),
    ("H", 0.0, 3.1932, 0.0330), ("H", -0.8808, 0.0348, 1.2256), ("H", 0.8808, 0.0348, 1.2256),
    ("H", 0.8908, 1.2715, -0.9275), ("H", -0.8908, 1.2715, -0.9275), ("H", 0.0, -2.1367, 0.3777),
    ("H", -0.8821, -1.2945, -0.8973), ("H", 0.8821, -1.2945, -0.8973)]}


def start_geometry(name):
    """The symbols and positions (Å) the MD starts from: EXTRA's, else ASE's G2 molecule (../make_data.py)."""
    if name in EXTRA:
        return [a[0] for a in EXTRA[name]], [list(a[1:]) for a in EXTRA[name]]
    return base.start_geometry(name)


def molecular_dynamics(job):
    """One molecule's MD in a folder of its own: (name, symbols, frames × atoms × 3 positions in Å)."""
    name, frames, every, temperature, root = job
    work = os.path.join(root, f"md_{name}")
    os.makedirs(work)
    symbols, start = start_geometry(name)
    base.write_xyz(os.path.join(work, "start.xyz"), symbols, start)
    with open(os.path.join(work, "md.inp"), "w") as f:
        f.write(f"$md\n   temp={temperature}\n   time={frames * every / 1000 + 0.5}\n   dump={every}\n"
                f"   step={STEP_FS}\n   hmass=1\n   shake=0\n   velo=false\n   nvt=true\n$end\n")
    base.run_xtb(["start.xyz", "--md", "--input", "md.inp", "--gfn", "2"], work)
    with open(os.path.join(work, "xtb.trj")) as f:
        lines = f.read().splitlines()
    n = len(symbols)
    positions = [[[float(v) for v in line.split()[1:4]] for line in lines[s + 2:s + 2 + n]]
                 for s in range(0, len(lines) - n - 1, n + 2)]
    if len(positions) < frames:
        raise RuntimeError(f"{name}: the MD wrote {len(positions)} frames, fewer than {frames}")
    shutil.rmtree(work)
    return name, symbols, np.array(positions[:frames])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(HERE, "data"))
    parser.add_argument("--molecules", default="CH3OH,CH3CH2OH,CH3CHO,HCOOH,CH3OCH3,CH3COOH",
                        help="comma-separated names of ASE's G2 set, or 1-propanol")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--every", type=float, default=20.0, help="fs between kept frames (a multiple of 0.5)")
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    from ase.collections import g2
    names = [m for m in args.molecules.split(",") if m]
    for m in names:
        if m not in g2.names and m not in EXTRA:
            sys.exit(f"make_data.py: --molecules: {m} is neither a name of ASE's G2 set nor one of "
                     f"{', '.join(EXTRA)}")
    if args.frames < 1 or args.jobs < 1 or not args.temperature > 0:
        sys.exit("make_data.py: --frames and --jobs must be >= 1 and --temperature > 0")
    if not args.every >= STEP_FS or abs(args.every / STEP_FS - round(args.every / STEP_FS)) > 1e-9:
        sys.exit(f"make_data.py: --every must be a multiple of {STEP_FS} fs, got {args.every:g}")
    if shutil.which("xtb") is None:
        sys.exit("make_data.py: xtb is missing: install Debian's package xtb")
    os.makedirs(args.out, exist_ok=True)
    todo = []
    for m in names:
        path = os.path.join(args.out, f"{m}_md.extxyz")
        if os.path.exists(path) and not args.overwrite:
            print(f"kept {path} (--overwrite replaces it)")
        else:
            todo.append(m)
    if not todo:
        return
    with tempfile.TemporaryDirectory() as work, concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
        print(f"GFN2-xTB MD of {', '.join(todo)} at {args.temperature:g} K: {args.frames} frames {args.every:g} fs "
              f"apart ({args.frames * args.every / 1000:g} ps) each, {args.jobs} at a time", flush=True)
        runs = list(pool.map(molecular_dynamics, [(m, args.frames, args.every, args.temperature, work)
                                                  for m in todo]))
        for name, symbols, positions in runs:
            labels = list(pool.map(base.label, [(f"{name}_{i}", symbols, positions[i], work)
                                                for i in range(len(positions))], chunksize=16))
            energies = np.array([e for e, _ in labels])
            gradients = np.array([g for _, g in labels])
            source = (f"GFN2-xTB (xtb) NVT MD of {name} at {args.temperature:g} K, {STEP_FS} fs steps, a frame every "
                      f"{args.every:g} fs")
            path = os.path.join(args.out, f"{name}_md.extxyz")
            base.write_extxyz(path, symbols, positions, energies, gradients, source)
            print(f"wrote {path}: {len(positions)} frames of {len(symbols)} atoms with energies and forces",
                  flush=True)


if __name__ == "__main__":
    main()
