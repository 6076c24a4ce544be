#!/usr/bin/env python3
"""Checks a pruned sweep against the same sweep trained in full, independently of gradfit_dist's pruner.

    check_pruning.py PRUNED/results.h5 FULL/results.h5 --method asha --min-epochs 10 --eta 3 --metric val_loss
    check_pruning.py --same-decisions A/pruning.tsv B/pruning.tsv

The first form replays the pruning rule on the full sweep's histories (which every pruned run must share up to
its last epoch) and expects the pruned sweep to have stopped exactly those runs, at those epochs. The second
compares two decisions files as sets (their order depends on timing). Exit 0 when everything agrees.
"""
import argparse
import math
import sys

import h5py
import numpy as np


def runs_in_order(path):
    """Per run, in the sweep's order (the summary's): name -> dict of attributes and history columns."""
    runs = {}
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["summary"]["name"]]
        for name in names:
            g = f["runs"][name]
            run = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
            for column in ("train_loss", "val_loss", "rel_grad_error"):
                run[column] = g[column][:]
            runs[name] = run
    return runs


def rungs(args):
    epochs, out = args.epochs, []
    e = args.min_epochs
    while e < epochs:
        out.append(e)
        e = e + args.min_epochs if args.method == "median" else e * args.eta
    return out


def metric_at(run, epoch, metric):
    """The metric the pruner compares after `epoch` epochs: best validation loss so far, else the epoch's value."""
    if metric == "val_loss":
        values = run["val_loss"][:epoch]
        values = values[np.isfinite(values)]
        return float(values.min()) if len(values) else math.inf
    value = float(run[metric][epoch - 1])
    return value if math.isfinite(value) else math.inf


def keeps(metrics, method, eta):
    """Which of the (metric, order) pairs continue."""
    ranked = sorted(metrics)
    if method == "asha":
        return {order for _, order in ranked[:max(1, len(ranked) // eta)]}
    kept = set()
    for j, (value, order) in enumerate(ranked):
        others = sorted(v for i, (v, _) in enumerate(ranked) if i != j)
        if not others:
            kept.add(order)
            continue
        mid = len(others) // 2
        median = others[mid] if len(others) % 2 else (others[mid - 1] + others[mid]) / 2
        if value <= median:
            kept.add(order)
    return kept


def expected_stops(full, args):
    """Per run name: the epoch the rule stops it at (None: it trains as far as it does in full)."""
    names = list(full)
    alive = set(range(len(names)))
    stops = {}
    for epoch in rungs(args):
        # Runs that trained past the rung in full paused there; one that ended at or before it (diverged, early
        # stopped) is over either way and is no candidate.
        reporting = [i for i in sorted(alive) if len(full[names[i]]["train_loss"]) > epoch]
        kept = keeps([(metric_at(full[names[i]], epoch, args.metric), i) for i in reporting], args.method, args.eta)
        for i in reporting:
            if i not in kept:
                stops[names[i]] = epoch
        alive = kept
    return stops


def check_against_full(args):
    pruned, full = runs_in_order(args.pruned), runs_in_order(args.full)
    if list(pruned) != list(full):
        sys.exit("the two files hold different runs")
    stops = expected_stops(full, args)
    problems, worst = [], 0.0
    for name, run in pruned.items():
        n = int(run["epochs_run"])
        for column in ("train_loss", "val_loss", "rel_grad_error"):
            a, b = run[column], full[name][column][:n]
            both = np.isfinite(a) & np.isfinite(b)
            if len(a) != n or not np.array_equal(np.isfinite(a), np.isfinite(b)):
                problems.append(f"{name}: {column} differs in length or finiteness")
                continue
            if both.any():
                worst = max(worst, float(np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-300))))
        want = stops.get(name)
        if want is not None:
            if run["status"] != "pruned" or n != want or int(run["pruned_at_epoch"]) != want:
                problems.append(f"{name}: expected pruned at epoch {want}, got {run['status']} after {n} epochs "
                                f"(pruned_at_epoch {run['pruned_at_epoch']})")
        elif run["status"] != full[name]["status"] or n != len(full[name]["train_loss"]):
            problems.append(f"{name}: expected {full[name]['status']} after {len(full[name]['train_loss'])} epochs, "
                            f"got {run['status']} after {n}")
    trained = sum(int(r["epochs_run"]) for r in pruned.values())
    total = sum(len(r["train_loss"]) for r in full.values())
    print(f"{len(stops)} of {len(pruned)} runs pruned as the rule says; histories agree to {worst:.1e} (relative); "
          f"{trained} of {total} epochs trained ({100.0 * trained / total:.1f} %)")
    if worst > args.rtol:
        problems.append(f"histories differ by {worst:.1e} > {args.rtol:.0e}")
    for p in problems:
        print("MISMATCH", p)
    return 1 if problems else 0


def decisions(path):
    rows = {}
    with open(path) as f:
        header = f.readline().strip()
        for line in f:
            run, rung, metric, decision = line.split()
            rows[(run, int(rung))] = (float(metric), decision)
    return header, rows


def check_same_decisions(a, b, rtol):
    (ha, ra), (hb, rb) = decisions(a), decisions(b)
    problems = [] if ha == hb else [f"headers differ: '{ha}' vs '{hb}'"]
    for key in sorted(set(ra) | set(rb)):
        if key not in ra or key not in rb:
            problems.append(f"run {key[0]} rung {key[1]}: only in {'the first' if key in ra else 'the second'}")
        elif ra[key][1] != rb[key][1]:
            problems.append(f"run {key[0]} rung {key[1]}: {ra[key][1]} vs {rb[key][1]}")
        elif not math.isclose(ra[key][0], rb[key][0], rel_tol=rtol):
            problems.append(f"run {key[0]} rung {key[1]}: metric {ra[key][0]!r} vs {rb[key][0]!r}")
    print(f"{len(ra)} and {len(rb)} decisions; {len(problems)} differ")
    for p in problems:
        print("MISMATCH", p)
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pruned", nargs="?")
    parser.add_argument("full", nargs="?")
    parser.add_argument("--method", choices=["asha", "median"], default="asha")
    parser.add_argument("--metric", choices=["val_loss", "train_loss", "rel_grad_error"], default="val_loss")
    parser.add_argument("--min-epochs", type=int, default=1)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--epochs", type=int, help="train.epochs (default: from the full sweep)")
    parser.add_argument("--rtol", type=float, default=1e-9, help="histories may differ by this (ensemble rounding)")
    parser.add_argument("--same-decisions", nargs=2, metavar=("A", "B"))
    args = parser.parse_args()
    if args.same_decisions:
        return check_same_decisions(*args.same_decisions, args.rtol)
    if args.epochs is None:
        with h5py.File(args.full, "r") as f:
            args.epochs = int(next(iter(f["runs"].values())).attrs["epochs"])
    return check_against_full(args)


if __name__ == "__main__":
    sys.exit(main())
