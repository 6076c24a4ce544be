#!/usr/bin/env python3
"""Leaderboard, loss curves and CSV export for a gradfit_dist results file.

    python3 scripts/analyze.py results/seed_sweep/results.h5
    python3 scripts/analyze.py results.h5 --by activation --top 5 --csv runs.csv --plots plots/

Works on the results file of a finished or an interrupted sweep (interrupted runs are listed with their status).
Needs h5py, pandas and matplotlib (Debian: apt-get install python3-h5py python3-pandas python3-matplotlib).
"""
import argparse
import os
import sys

try:
    import h5py
    import numpy as np
    import pandas as pd
except ImportError as error:  # a clear message instead of a traceback
    sys.exit(f"analyze.py: {error.name} is missing; install python3-h5py python3-pandas python3-matplotlib "
             "(or pip install h5py pandas matplotlib)")


def parse_params(text):
    """'activation=relu,widths=10x10,lr=0.05' -> {'activation': 'relu', ...} (values stay strings)."""
    params = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        params[key.split(".")[-1]] = value
    return params


def load_runs(path):
    """One row per run: the summary table plus each swept parameter as a column; and the histories by run name."""
    with h5py.File(path, "r") as f:
        if "runs" not in f or len(f["runs"]) == 0:
            sys.exit(f"analyze.py: {path} holds no runs yet")
        if "summary" in f:
            table = pd.DataFrame(f["summary"][:])
        else:  # older files: build the rows from the run attributes
            table = pd.DataFrame([{k: f["runs"][n].attrs.get(k) for k in
                                   ("id", "name", "status", "epochs_run", "final_loss", "final_rel_grad_error")}
                                  for n in f["runs"]])
        for column in table.columns:
            if table[column].dtype == object:
                table[column] = table[column].map(lambda v: v.decode() if isinstance(v, bytes) else v)
        params = pd.DataFrame([parse_params(p) for p in table.get("params", pd.Series([""] * len(table)))])
        params = params.add_prefix("param.") if len(params.columns) else params
        table = pd.concat([table.reset_index(drop=True), params.reset_index(drop=True)], axis=1)
        histories = {}
        for name in f["runs"]:
            group = f["runs"][name]
            histories[name] = {k: group[k][:] for k in ("epoch", "train_loss", "val_loss", "rel_grad_error")
                               if k in group}
    return table, histories


def leaderboard(table, metric, top):
    ranked = table.copy()
    ranked["_key"] = ranked[metric].astype(float).fillna(np.inf)
    ranked = ranked.sort_values("_key", kind="stable").drop(columns="_key")
    columns = ["id", "status", metric, "final_loss", "epochs_run"] + [c for c in ranked.columns if c.startswith("param.")]
    columns = [c for i, c in enumerate(columns) if c in ranked.columns and c not in columns[:i]]
    shown = ranked[columns].head(top).copy()
    shown.columns = [c.replace("param.", "") for c in shown.columns]
    shown.insert(0, "rank", range(1, len(shown) + 1))
    return shown


def plot_curves(table, histories, by, out_dir, metric_column):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    column = f"param.{by}"
    if column not in table.columns:
        choices = ", ".join(c[len("param."):] for c in table.columns if c.startswith("param.")) or "none"
        sys.exit(f"analyze.py: --by {by}: not a swept parameter of this sweep (swept: {choices})")
    groups = list(dict.fromkeys(table[column]))
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for quantity, label in ((metric_column, "relative gradient error" if metric_column == "rel_grad_error" else
                             "validation loss"), ("train_loss", "training loss")):
        fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.6), sharey=True, squeeze=False)
        for axis, value in zip(axes[0], groups):
            for _, row in table[table[column] == value].iterrows():
                h = histories.get(row["name"])
                if not h or quantity not in h or not np.isfinite(h[quantity]).any():
                    continue
                others = ",".join(f"{c[len('param.'):]}={row[c]}" for c in table.columns
                                  if c.startswith("param.") and c != column)
                axis.plot(h["epoch"], h[quantity], linewidth=1, label=others or row["name"])
            axis.set_yscale("log")
            axis.set_title(f"{by} = {value}")
            axis.set_xlabel("epoch")
            axis.grid(True, which="major", alpha=0.3)
        axes[0][0].set_ylabel(label)
        handles, labels = axes[0][-1].get_legend_handles_labels()
        if handles and len(handles) <= 12:
            axes[0][-1].legend(fontsize=6, loc="upper right")
        fig.suptitle(f"{label} by {by}")
        fig.tight_layout()
        path = os.path.join(out_dir, f"{quantity}_by_{by}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Reads the 'summary' table and each run's histories from RESULTS.h5.")
    parser.add_argument("results", help="a results.h5 written by gradfit_dist")
    parser.add_argument("--metric", choices=["final_rel_grad_error", "best_val_loss", "final_loss", "best_loss"],
                        help="rank runs by this (default: best_val_loss when the runs have validation, "
                             "else final_rel_grad_error)")
    parser.add_argument("--top", type=int, default=10, help="rows of the leaderboard (default 10)")
    parser.add_argument("--by", help="the swept parameter that groups the loss curves (default: the first swept)")
    parser.add_argument("--plots", help="folder for the PNG plots (default: plots/ beside RESULTS.h5)")
    parser.add_argument("--no-plots", action="store_true", help="print the leaderboard only")
    parser.add_argument("--csv", help="also write every run (summary and parameters) to this CSV file")
    args = parser.parse_args(argv)

    if not os.path.exists(args.results):
        sys.exit(f"analyze.py: {args.results}: no such file")
    table, histories = load_runs(args.results)
    metric = args.metric
    if metric is None:
        has_val = "best_val_loss" in table.columns and np.isfinite(table["best_val_loss"].astype(float)).any()
        metric = "best_val_loss" if has_val else "final_rel_grad_error"

    statuses = table["status"].value_counts().to_dict() if "status" in table.columns else {}
    print(f"{args.results}: {len(table)} runs ({', '.join(f'{n} {s}' for s, n in statuses.items())}), "
          f"ranked by {metric}")
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.float_format", "{:.4g}".format):
        print(leaderboard(table, metric, args.top).to_string(index=False))

    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if not args.no_plots:
        swept = [c[len("param."):] for c in table.columns if c.startswith("param.") and c != "param.repeat"]
        by = args.by or (swept[0] if swept else None)
        if by is None:
            print("no swept parameter to group curves by: no plots")
        else:
            out_dir = args.plots or os.path.join(os.path.dirname(os.path.abspath(args.results)), "plots")
            curve = "val_loss" if metric == "best_val_loss" else "rel_grad_error"
            for path in plot_curves(table, histories, by, out_dir, curve):
                print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
