#!/usr/bin/env python3
"""Fit quality by optimizer: the held-out relative gradient error that constant-lr Adam, each learning-rate
schedule, L-BFGS (history 100, the default, and 300), and Adam followed by L-BFGS reach on four problems, in equal
epochs and in equal wall time.

  bench_fit.py [--epochs 2000] [--ranks 2] [--problems quadratic,rosenbrock,wells,physical,...] [--methods ...]

Each problem is a training file and a held-out test file of gradient samples (new points, the same field; the
wells and the physical-units one also with data.standardize), written here with numpy; every run is float64, full batch,
softplus 64-64 (wells_large, not run by default: 128-128), seed 0, trained by gradfit_dist under
`mpirun -n RANKS`; the error is `gradfit_dist eval`'s ||dV/dx - S|| / ||S|| on the test file, with the weights
the run is saved with. "Equal time" reruns each method that was more than 5 % faster than the slowest one at equal
epochs with its epochs scaled up to that one's training time (wall_seconds). Methods the binary does not know are left
out. Needs h5py and numpy (Debian: /usr/bin/python3) and a build (scripts/build.sh). Prints a markdown table.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import h5py
import numpy as np

BIN = os.environ.get("GRADFIT_BIN", "build/src/gradfit_dist")
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")


# --- problems: (x, S) at n points of a field, train and test drawn alike ---------------------------------------

def quadratic(rng, n):  # the seed example's V = x'Px, with softplus 2-64-64-1
    P = np.array([[20.1892, -26.6218], [-26.6218, 38.0375]])
    x = rng.uniform(-3, 3, (n, 2))
    return x, 2 * x @ P


def rosenbrock(rng, n):  # 4-D Rosenbrock on [-2, 2]^4
    x = rng.uniform(-2, 2, (n, 4))
    g = np.zeros_like(x)
    for i in range(3):
        a, b = x[:, i], x[:, i + 1]
        g[:, i] += -400 * a * (b - a * a) - 2 * (1 - a)
        g[:, i + 1] += 200 * (b - a * a)
    return x, g


WELLS = np.random.default_rng(7).uniform(-1.5, 1.5, (6, 8))


def wells(rng, n):  # V = -sum_k exp(-|x - c_k|^2 / 2) in 8-D, six wells
    x = rng.uniform(-2, 2, (n, 8))
    g = np.zeros_like(x)
    for c in WELLS:
        d = x - c
        g += d * np.exp(-0.5 * (d * d).sum(1, keepdims=True))
    return x, g


def physical(rng, n):  # x in [0, 1000]^2 (say pm), V ~ 1e7, S ~ 1e4, with 1 % noise on S (also standardized)
    x = rng.uniform(0, 1000, (n, 2))
    a, b = x[:, 0] / 300, x[:, 1] / 200
    g = np.stack([1e7 / 300 * np.cos(a) * np.cos(b), -1e7 / 200 * np.sin(a) * np.sin(b)], 1)
    return x, g * (1 + 0.01 * rng.standard_normal(g.shape))


# name: (field, training rows, data.standardize, model.widths). wells_large: the wells with ten times the points and
# a wider model, standardized, where the training error and not the sampling sets the held-out error.
PROBLEMS = {"quadratic": (quadratic, 400, False, "64, 64"), "rosenbrock": (rosenbrock, 2000, False, "64, 64"),
            "wells": (wells, 2000, False, "64, 64"), "wells_standardized": (wells, 2000, True, "64, 64"),
            "physical": (physical, 1000, False, "64, 64"),
            "physical_standardized": (physical, 1000, True, "64, 64"),
            "wells_large": (wells, 20000, True, "128, 128")}
DEFAULT_PROBLEMS = "quadratic,rosenbrock,wells,wells_standardized,physical,physical_standardized"

# --- methods: the optimizer section (and train.init_from stages) -----------------------------------------------

METHODS = {
    "adam": "{name: adam, lr: 0.01}",
    "adam_exponential": "{name: adam, lr: 0.01, schedule: exponential, lr_final: 0.0001}",
    "adam_cosine": "{name: adam, lr: 0.01, schedule: cosine, warmup_epochs: 20, lr_final: 0.00001}",
    "adam_plateau": "{name: adam, lr: 0.01, schedule: plateau, plateau_factor: 0.5, plateau_patience: 20}",
    "lbfgs": "{name: lbfgs, lr: 1}",  # history_size 100, the default (PyTorch's too)
    "lbfgs_history_300": "{name: lbfgs, lr: 1, history_size: 300}",
    "adam_then_lbfgs": None,  # adam_cosine for half the epochs, then lbfgs from its weights
}


def write(path, x, g):
    with h5py.File(path, "w") as f:
        f["x"], f["grad"] = x, g


def train(work, problem, name, optimizer, epochs, ranks, init_from=None):
    """Trains one run; returns (results file, wall_seconds) or None when the binary refuses the method."""
    out = os.path.join(work, f"{problem}-{name}-{epochs}")
    init = f"\n  init_from: {init_from}" if init_from else ""
    _, _, standardized, widths = PROBLEMS[problem]
    standardize = ", standardize: true" if standardized else ""
    with open(out + ".yaml", "w") as f:
        f.write(f"name: {name}\ndata: {{target: file, path: {problem}-train.h5{standardize}}}\n"
                f"model: {{widths: [{widths}], activation: softplus, dtype: float64}}\n"
                f"optimizer: {optimizer}\ntrain:\n  epochs: {epochs}\n  seed: 0{init}\n")
    cmd = ["mpirun", "--oversubscribe", "-n", str(ranks), BIN, "--fresh", "--threads", "1", "--progress", "lines",
           "--out", out, out + ".yaml"]
    p = subprocess.run(cmd, env=MPI_ENV, capture_output=True, text=True)
    if p.returncode != 0:
        errors = [line for line in p.stderr.splitlines() if "gradfit_dist: error" in line] or [str(p.returncode)]
        print(f"# {problem} {name}: left out: {errors[0]}", file=sys.stderr)
        return None
    results = os.path.join(out, "results.h5")
    with h5py.File(results, "r") as f:
        run = f["runs"][name]
        return results, float(run.attrs["wall_seconds"])


def held_out_error(results, test):
    p = subprocess.run([BIN, "eval", results, test], env=MPI_ENV, capture_output=True, text=True, check=True)
    return float(re.search(r"relative gradient error .*: (\S+)", p.stdout).group(1))


def run_method(work, problem, method, epochs, ranks):
    """(held-out error, training seconds) of a method at `epochs`, or None."""
    if method != "adam_then_lbfgs":
        trained = train(work, problem, method, METHODS[method], epochs, ranks)
        return None if trained is None else (held_out_error(trained[0], f"{work}/{problem}-test.h5"), trained[1])
    first = train(work, problem, "stage1", METHODS["adam_cosine"], epochs // 2, ranks)
    if first is None:
        return None
    second = train(work, problem, method, METHODS["lbfgs"], epochs - epochs // 2, ranks, init_from=first[0])
    if second is None:
        return None
    return held_out_error(second[0], f"{work}/{problem}-test.h5"), first[1] + second[1]


def bench_problem(work, problem, methods, epochs, ranks):
    make, rows, _, _ = PROBLEMS[problem]
    rng = np.random.default_rng(1)
    write(f"{work}/{problem}-train.h5", *make(rng, rows))
    write(f"{work}/{problem}-test.h5", *make(rng, 2000))
    at_epochs = {m: run_method(work, problem, m, epochs, ranks) for m in methods}
    at_epochs = {m: r for m, r in at_epochs.items() if r is not None}
    budget = max(seconds for _, seconds in at_epochs.values())
    rows_out = []
    for m, (error, seconds) in at_epochs.items():
        scaled = int(epochs * budget / seconds)
        timed = run_method(work, problem, m, scaled, ranks) if scaled > 1.05 * epochs else (error, seconds)
        rows_out.append((problem, m, error, seconds, scaled if scaled > 1.05 * epochs else epochs, *timed))
    return rows_out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--problems", default=DEFAULT_PROBLEMS, help=f"of {','.join(PROBLEMS)}")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory() as work:
        rows = []
        for problem in args.problems.split(","):
            rows += bench_problem(work, problem, methods, args.epochs, args.ranks)
    print(f"| problem | method | held-out rel. error @ {args.epochs} epochs | train s | "
          "epochs at equal time | held-out rel. error @ equal time | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for problem, m, error, seconds, epochs, timed_error, timed_seconds in rows:
        print(f"| {problem} | {m} | {error:.3e} | {seconds:.1f} | {epochs} | {timed_error:.3e} | {timed_seconds:.1f} |")


if __name__ == "__main__":
    main()
