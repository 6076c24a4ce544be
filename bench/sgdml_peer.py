#!/usr/bin/env python3
"""sGDML (https://github.com/stefanch/sGDML, `pip install sgdml`) as a second peer of bench/bench_molecule.sh: a
gradient-domain kernel model on the same inverse distances, trained on frames of TRAIN.h5 and tested on TEST.h5.
bench/ only; run it with an interpreter where sgdml is installed (a virtual environment).

Usage: sgdml_peer.py TRAIN.h5 TEST.h5 [--train-frames 500] [--valid 200] [--sigmas 10 20 40 80]

Takes --train-frames frames of TRAIN.h5 at random for the kernel and --valid others to choose the kernel width sigma
(the one with the lowest validation force error among --sigmas), as sGDML's own `sgdml all` does; no symmetries
(use_sym=False: the same descriptor as gradfit_dist's inverse_distances). Prints, per sigma, its validation error,
then the chosen model's wall time (training of that sigma) and its test errors: relative gradient error, force MAE
and RMSE (eV/Angstrom). sGDML predicts forces F = -dE/dx; the errors compare -F with the data's grad.
"""
import argparse
import hashlib
import time

import h5py
import numpy as np
from sgdml.predict import GDMLPredict
from sgdml.train import GDMLTrain


def dataset(path, rows):
    with h5py.File(path) as f:
        x, g, e, z = f["x"][:][rows], f["grad"][:][rows], f["value"][:][rows], f.attrs["numbers"]
    r = x.reshape(len(rows), -1, 3)
    text = {"type": "d", "code_version": "1.0.3", "name": path, "theory": "GFN2-xTB", "r_unit": "Ang",
            "e_unit": "eV", "md5": hashlib.md5(r.tobytes()).hexdigest()}
    data = {key: np.array(value) for key, value in text.items()}  # as np.load gives sGDML's .npz datasets
    data.update({"z": z, "R": r, "E": e.reshape(-1, 1), "F": -g.reshape(len(rows), -1, 3), "E_min": e.min(),
                 "E_max": e.max(), "E_mean": e.mean(), "E_var": e.var(), "F_min": -g.max(), "F_max": -g.min(),
                 "F_mean": -g.mean(), "F_var": g.var()})
    return data


def errors(model, data):
    _, forces = GDMLPredict(model).predict(data["R"].reshape(len(data["R"]), -1))
    e = -forces.reshape(len(forces), -1) - (-data["F"].reshape(len(forces), -1))
    s = -data["F"].reshape(len(forces), -1)
    return np.linalg.norm(e) / np.linalg.norm(s), np.abs(e).mean(), np.sqrt((e * e).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train")
    parser.add_argument("test")
    parser.add_argument("--train-frames", type=int, default=500)
    parser.add_argument("--valid", type=int, default=200)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[10, 20, 40, 80])
    args = parser.parse_args()
    with h5py.File(args.train) as f:
        frames = len(f["x"])
    with h5py.File(args.test) as f:
        test_frames = len(f["x"])
    order = np.random.default_rng(0).permutation(frames)
    train_rows = np.sort(order[:args.train_frames])
    valid_rows = np.sort(order[args.train_frames:args.train_frames + args.valid])
    train, valid = dataset(args.train, train_rows), dataset(args.train, valid_rows)
    test = dataset(args.test, np.arange(test_frames))
    gdml = GDMLTrain()
    best = None
    for sigma in args.sigmas:
        start = time.perf_counter()
        task = gdml.create_task(train, len(train_rows), valid, len(valid_rows), sig=sigma, use_sym=False)
        model = gdml.train(task)
        seconds = time.perf_counter() - start
        rel = errors(model, valid)[0]
        print(f"sgdml sigma {sigma:g}: {seconds:.1f} s training; validation relative gradient error {rel:.4f}",
              flush=True)
        if best is None or rel < best[0]:
            best = (rel, sigma, seconds, model)
    rel, mae, rmse = errors(best[3], test)
    print(f"sgdml (sigma {best[1]:g}, {len(train_rows)} training frames): {best[2]:.1f} s training; test: relative "
          f"gradient error {rel:.4f}, force MAE {mae:.4f} eV/A, RMSE {rmse:.4f} eV/A")


if __name__ == "__main__":
    main()
