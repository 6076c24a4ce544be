#!/usr/bin/env python3
"""Compares two gradfit_dist results files bit for bit: every dataset (histories, weights), and each run's status,
epochs run and final metrics; NaN equals NaN. Timing (epoch_seconds, wall times) and /summary are left out.
Prints one line and exits 1 on any difference, e.g. to check that a change of code leaves results unchanged:

    python3 scripts/compare_results.py results/before/results.h5 results/after/results.h5
"""
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:
    sys.exit(f"compare_results.py: {e.name} is missing under {sys.executable}; install python3-h5py "
             "(Debian: /usr/bin/python3 has it)")

RUN_ATTRIBUTES = ("status", "epochs_run", "final_loss", "final_rel_grad_error", "best_val_loss")


def datasets(f):
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return {n for n in names if not n.endswith("epoch_seconds") and n != "summary"}


def same(x, y):
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    return np.array_equal(x, y, equal_nan=x.dtype.kind == "f")


def same_attribute(x, y):
    if isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y):
        return True
    return x == y


def main(path_a, path_b):
    a, b = h5py.File(path_a, "r"), h5py.File(path_b, "r")
    names_a, names_b = datasets(a), datasets(b)
    differ = sorted(names_a ^ names_b)
    common = sorted(names_a & names_b)
    differ += [n for n in common if not same(a[n][()], b[n][()])]
    compared = len(common)
    for run in a["runs"]:
        for key in RUN_ATTRIBUTES:
            if key in a["runs"][run].attrs:
                compared += 1
                if run not in b["runs"] or not same_attribute(a["runs"][run].attrs[key],
                                                              b["runs"][run].attrs.get(key)):
                    differ.append(f"{run}@{key}")
    verdict = "bit for bit" if not differ else f"{len(differ)} differ: " + ", ".join(differ[:10])
    print(f"{path_a} vs {path_b}: {len(a['runs'])} runs, {compared} datasets and attributes compared, {verdict}")
    return 1 if differ else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
