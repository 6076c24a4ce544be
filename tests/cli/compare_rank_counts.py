#!/usr/bin/env python3
"""Compares the runs of two results files of the same sweep trained on different rank counts.

Usage: compare_rank_counts.py A.h5 B.h5 [--tol 1e-10]

Per history column (train_loss, rel_grad_error, grad_norm, lr, val_loss) the largest relative difference, element
by element, and for the saved weights (model/, model_last/) the largest difference relative to each tensor's largest
element; the runs must have the same statuses and lengths. Exits 1 when a difference exceeds --tol.
"""
import argparse
import sys

import h5py
import numpy as np

COLUMNS = ["train_loss", "rel_grad_error", "grad_norm", "lr", "val_loss"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--tol", type=float, default=1e-10)
    args = parser.parse_args()
    worst = {k: 0.0 for k in COLUMNS + ["weights"]}
    a, b = h5py.File(args.a, "r"), h5py.File(args.b, "r")
    assert sorted(a["runs"]) == sorted(b["runs"]), "different runs"
    for name in a["runs"]:
        ga, gb = a["runs"][name], b["runs"][name]
        assert ga.attrs["status"] == gb.attrs["status"] and len(ga["epoch"]) == len(gb["epoch"]), name
        for k in COLUMNS:
            x, y = ga[k][:], gb[k][:]
            if not np.isnan(x).all():
                worst[k] = max(worst[k], float((np.abs(x - y) / np.abs(x)).max()))
        for group in ["model", "model_last"]:
            for p in ga[group] if group in ga else []:
                x, y = ga[group][p][:], gb[group][p][:]
                worst["weights"] = max(worst["weights"], float(np.abs(x - y).max() / np.abs(x).max()))
    limits = {k: args.tol for k in worst}
    print("largest relative differences: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    failed = [k for k in worst if worst[k] > limits[k]]
    for k in failed:
        print(f"{k}: {worst[k]:.2e} exceeds {limits[k]:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
