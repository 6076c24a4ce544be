#!/usr/bin/env python3
"""Leaderboard, the best run, loss curves, hyperparameter importance and CSV export for a gradfit_dist results file.

    python3 scripts/analyze.py results/seed_sweep/results.h5
    python3 scripts/analyze.py results.h5 --by activation --top 5 --csv runs.csv --plots plots/

Works on the results file of a finished or an interrupted sweep (interrupted runs are listed with their status).
It never writes over its input: a --csv or --plots path that is the results file (or a link to it) is refused, as
is a --csv that is an existing HDF5 file. A results path that is missing, a folder, not HDF5, damaged, or an HDF5
file without runs (a data file) is one error line, before anything is written.
The best run is gradfit_dist's (/summary's column rank, the order of its leaderboard and of eval --run best).
Needs h5py, pandas and matplotlib (Debian: apt-get install python3-h5py python3-pandas python3-matplotlib).

As a library (strings decoded, swept parameters as columns 'param.<key>'):

    import sys; sys.path.insert(0, "scripts")
    from analyze import load_summary
    table = load_summary("results/seed_sweep/results.h5")   # ResultsFileError (a ValueError) for a bad file
"""
import argparse
import contextlib
import os
import sys

from tool_files import same_file, short_reason, starts_as_hdf5  # scripts/, beside this file


def missing_module_message(error):
    """The ImportError as one line naming the interpreter that lacks the module and how to install it there."""
    return (f"analyze.py: module '{error.name}' is missing for the interpreter {sys.executable}; install it there "
            f"({sys.executable} -m pip install h5py pandas matplotlib), or run /usr/bin/python3 after "
            "apt-get install python3-h5py python3-pandas python3-matplotlib")


try:
    import h5py
    import numpy as np
    import pandas as pd
except ImportError as error:  # a clear message instead of a traceback
    sys.exit(missing_module_message(error))

ELIGIBLE_STATUSES = ("done", "early_stopped")  # the runs "best" is chosen among; the others rank after them
REPLICATE_KEYS = ("repeat", "seed")  # runs that differ only in these are repeats of one configuration
RUN_ATTRIBUTES = ("best_epoch", "pruned_at_epoch", "rung")  # taken from /runs/<name> where /summary lacks them
HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "rel_grad_error")
CURVE_LABELS = {"rel_grad_error": "relative gradient error (training rows)", "val_loss": "validation loss",
                "train_loss": "training loss"}
STATUS_COLOURS = {"done": "tab:green", "early_stopped": "tab:blue", "pruned": "tab:orange", "diverged": "tab:red",
                  "interrupted": "tab:gray"}
BURN_IN_FRACTION = 0.05  # the first epochs, left out when choosing a plot's y-range
PLOT_NAMES = ("rel_grad_error_by_{by}.png", "val_loss_by_{by}.png", "train_loss_by_{by}.png", "importance.png",
              "pruning.png")  # every file write_plots may write


class ResultsFileError(ValueError):
    """A results file that cannot be analysed; the message is one line naming the file and what is wrong."""


def open_results(path):
    """The HDF5 file at path, opened read-only; ResultsFileError when it is missing, a folder, empty, not HDF5 or
    damaged so that HDF5 cannot open it."""
    if not os.path.exists(path):
        raise ResultsFileError(f"{path}: no such file")
    if os.path.isdir(path):
        inside = os.path.join(path, "results.h5")
        hint = f" (give {inside})" if os.path.isfile(inside) else ""
        raise ResultsFileError(f"{path} is a folder, not a results file{hint}")
    if os.path.getsize(path) == 0:
        raise ResultsFileError(f"{path} is empty (0 bytes), not a results file")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        if starts_as_hdf5(path):
            raise ResultsFileError(f"{path}: a damaged or truncated HDF5 file ({short_reason(error)})") from None
        raise ResultsFileError(f"{path} is not an HDF5 file ({short_reason(error)}): give the results.h5 that "
                               "gradfit_dist writes") from None


@contextlib.contextmanager
def results_file(path):
    """open_results(path) as a context; an error reading it (a damaged dataset, a missing field) becomes one
    ResultsFileError line too. Checks that the file holds runs."""
    f = open_results(path)
    try:
        with f:
            if "runs" not in f:
                if "x" in f or "grad" in f:
                    raise ResultsFileError(f"{path} is a data file (datasets {', '.join(sorted(f))}), not a results "
                                           "file: give the results.h5 that gradfit_dist writes in its --out folder")
                raise ResultsFileError(f"{path} has no group /runs: not a gradfit_dist results file")
            if len(f["runs"]) == 0:
                raise ResultsFileError(f"{path} holds no runs yet")
            yield f
    except ResultsFileError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError) as error:
        raise ResultsFileError(f"{path}: cannot read it, a damaged results file? ({short_reason(error)})") from None


def decoded(value):
    """bytes (HDF5 fixed-length strings come back so) -> str; anything else unchanged."""
    return value.decode() if isinstance(value, bytes) else value


def parse_params(text):
    """'activation=relu,widths=10x10,lr=0.05' -> {'activation': 'relu', ...} (values stay strings)."""
    params = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        params[key.split(".")[-1]] = value
    return params


def summary_rows(f):
    """/summary as a DataFrame; for files without it, the same columns from the run attributes."""
    if "summary" in f:
        return pd.DataFrame(f["summary"][:])
    keys = ("id", "name", "status", "epochs_run", "final_loss", "final_rel_grad_error", "best_loss", "best_val_loss",
            "params")
    return pd.DataFrame([{k: f["runs"][n].attrs.get(k) for k in keys} for n in f["runs"]])


def add_run_attributes(table, f):
    """Columns RUN_ATTRIBUTES that /summary lacks, from each run's attributes (absent ones stay absent)."""
    for key in RUN_ATTRIBUTES:
        if key in table.columns:
            continue
        values = [f["runs"][n].attrs.get(key) if n in f["runs"] else None for n in table["name"]]
        if any(v is not None for v in values):
            table[key] = values
    return table


def load_summary(path):
    """One row per run of the results file `path`: /summary with strings decoded and each swept parameter as a column.

    String columns (id, name, status, params, ...) hold str, never bytes. Each key of the run's `params`
    ("model.activation=relu,optimizer.lr=0.05,repeat=0") becomes a column 'param.<last part of the key>' holding
    the value's text ('param.activation', 'param.lr', 'param.repeat'). best_epoch, and pruned_at_epoch and rung
    where the file has them, are columns too.

    Example:
        >>> import sys; sys.path.insert(0, "scripts")
        >>> from analyze import load_summary
        >>> table = load_summary("results/seed_sweep/results.h5")
        >>> table.sort_values("final_rel_grad_error")[["name", "status", "param.lr"]].head(3)

    Raises ResultsFileError (a ValueError, one line) when path is missing, a folder, not HDF5, damaged, or holds no
    runs (a data file, say).
    """
    with results_file(path) as f:
        table = summary_rows(f)
        for column in table.columns:
            if table[column].dtype == object:
                table[column] = table[column].map(decoded)
        table = add_run_attributes(table, f)
    params = pd.DataFrame([parse_params(p or "") for p in table.get("params", pd.Series([""] * len(table)))])
    params = params.add_prefix("param.") if len(params.columns) else params
    return pd.concat([table.reset_index(drop=True), params.reset_index(drop=True)], axis=1)


def load_histories(path):
    """Each run's per-epoch histories (HISTORY_KEYS present in the file), by run name."""
    with results_file(path) as f:
        return {name: {k: group[k][:] for k in HISTORY_KEYS if k in group} for name, group in f["runs"].items()}


def load_runs(path):
    """One row per run (load_summary) and the histories by run name (load_histories)."""
    return load_summary(path), load_histories(path)


def has_validation(table):
    return "best_val_loss" in table.columns and np.isfinite(table["best_val_loss"].astype(float)).any()


def best_metric(table):
    """The metric "best" ranks by: best_val_loss when any run has a finite one (validation), else
    final_rel_grad_error (issue 17's rule, meant to match gradfit_dist's --run best)."""
    return "best_val_loss" if has_validation(table) else "final_rel_grad_error"


def rank_runs(table, metric):
    """The runs in rank order: those whose status is done or early_stopped first, then the others (pruned, diverged,
    interrupted); within each, by `metric` ascending, NaN last, a tie to the first by name. The first row is best.
    By the best-run metric, the order gradfit_dist wrote (/summary's column rank), where the file has it: the rule
    is gradfit_dist's (records::best_first), this is its fallback for older files and other metrics."""
    if metric == best_metric(table) and "rank" in table.columns:
        return table.sort_values("rank", kind="stable").reset_index(drop=True)
    ranked = table.copy()
    ranked["_ineligible"] = ~eligible(ranked)
    ranked["_key"] = ranked[metric].astype(float).replace(-np.inf, np.nan).fillna(np.inf)
    ranked = ranked.sort_values(["_ineligible", "_key", "name"], kind="stable")
    return ranked.drop(columns=["_ineligible", "_key"]).reset_index(drop=True)


def eligible(ranked):
    """Whether each run may be best: its status is done or early_stopped."""
    if "status" not in ranked.columns:
        return pd.Series(True, index=ranked.index)
    return ranked["status"].isin(ELIGIBLE_STATUSES)


def best_row(ranked):
    """The best run (the first of rank_runs), or None when no run may be best."""
    return ranked.iloc[0] if len(ranked) and eligible(ranked).iloc[0] else None


def best_run_line(ranked, metric):
    """'best run: NAME (id, status): metric = value, the lowest of the N done or early_stopped runs'."""
    best = best_row(ranked)
    if best is None:
        return f"best run: none (no run is {' or '.join(ELIGIBLE_STATUSES)})"
    return (f"best run: {best['name']} (id {best.get('id', '?')}, {best.get('status', '?')}): "
            f"{metric} = {float(best[metric]):.6g}, the lowest of the {int(eligible(ranked).sum())} "
            f"{' or '.join(ELIGIBLE_STATUSES)} runs")


def swept_keys(table, with_replicates=False):
    """The keys of the 'param.' columns (those with more than one value, unless with_replicates)."""
    keys = [c[len("param."):] for c in table.columns if c.startswith("param.")]
    if with_replicates:
        return keys
    return [k for k in keys if k not in REPLICATE_KEYS and table[f"param.{k}"].nunique() > 1]


def leaderboard(ranked, metric, top):
    columns = ["id", "status", metric, "final_loss", "epochs_run"]
    if "test_rel_grad_error" in ranked.columns and np.isfinite(ranked["test_rel_grad_error"].astype(float)).any():
        columns[3:3] = ["test_rel_grad_error", "test_grad_mae"]  # data.test_path: shown, not ranked by
    if "rung" in ranked.columns and (ranked["rung"].astype(float) >= 0).any():  # -1: the sweep does not prune
        columns.append("rung")
    columns += [c for c in ranked.columns if c.startswith("param.")]
    columns = [c for i, c in enumerate(columns) if c in ranked.columns and c not in columns[:i]]
    shown = ranked[columns].head(top).copy()
    shown.columns = [c.replace("param.", "") for c in shown.columns]
    shown.insert(0, "rank", range(1, len(shown) + 1))
    return shown


# ---------------------------------------------------------------------------------------------------------- plots

def pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        sys.exit(missing_module_message(error))
    return plt


def line_style(index):
    """A distinct (colour, line style) for line `index`: tab10's ten colours, then the same with other dashes."""
    import matplotlib
    styles = ("-", "--", ":", "-.")
    colour = matplotlib.colormaps["tab10"](index % 10)
    return colour, styles[(index // 10) % len(styles)]


def configurations(ranked, by):
    """The runs grouped into configurations (same parameters except REPLICATE_KEYS), best configuration first:
    a list of (label without `by` and the replicate keys, value of `by`, the rows of its runs in rank order)."""
    keys = [k for k in swept_keys(ranked, with_replicates=True) if k not in REPLICATE_KEYS or k == by]
    groups = {}
    for _, row in ranked.iterrows():  # in rank order, so the first configuration holds the best run
        key = tuple(row[f"param.{k}"] for k in keys)
        groups.setdefault(key, []).append(row)
    result = []
    for key, rows in groups.items():
        label = ",".join(f"{k}={v}" for k, v in zip(keys, key) if k != by) or "all runs"
        result.append((label, rows[0][f"param.{by}"], rows))
    return result


def aggregate(rows, histories, quantity):
    """The mean, min and max over the repeats of `quantity` per epoch (a DataFrame indexed by epoch), or None."""
    series = {}
    for row in rows:
        h = histories.get(row["name"], {})
        if quantity in h and "epoch" in h and np.isfinite(h[quantity]).any():
            series[row["name"]] = pd.Series(h[quantity], index=h["epoch"])
    if not series:
        return None
    frame = pd.DataFrame(series)
    return pd.DataFrame({"mean": frame.mean(axis=1), "min": frame.min(axis=1), "max": frame.max(axis=1)})


def y_limits(curves, top):
    """A log y-range from the `top` best configurations' curves after the first BURN_IN_FRACTION of epochs, with a
    margin; the early epochs and the worst runs may leave it."""
    values = []
    for curve in curves[:top]:
        start = curve.index.min() + BURN_IN_FRACTION * (curve.index.max() - curve.index.min())
        part = curve[curve.index >= start][["min", "max"]].to_numpy().ravel()
        values.append(part[np.isfinite(part) & (part > 0)])
    values = np.concatenate(values) if values else np.array([])
    if values.size == 0:
        return None
    low, high = values.min(), values.max()
    if high <= low:
        high = low * 1.1
    margin = (high / low) ** 0.08 * 1.05
    return low / margin, high * margin


def value_at(histories, row, quantity, epoch):
    """The run's `quantity` at `epoch` (NaN when it has none)."""
    h = histories.get(row["name"], {})
    if quantity not in h or "epoch" not in h:
        return np.nan
    hit = np.nonzero(h["epoch"] == epoch)[0]
    return float(h[quantity][hit[0]]) if hit.size else np.nan


def event_epochs(row):
    """The marked epochs of a run: {'best epoch': e, 'early stop': e, 'pruned': e} where they apply."""
    events = {}
    best_epoch = row.get("best_epoch")
    if best_epoch is not None and np.isfinite(float(best_epoch)) and int(best_epoch) > 0:
        events["best epoch"] = int(best_epoch)
    if row.get("status") == "early_stopped":
        events["early stop"] = int(row["epochs_run"])
    if row.get("status") == "pruned":
        pruned = row.get("pruned_at_epoch")
        events["pruned"] = int(pruned) if pruned is not None and float(pruned) > 0 else int(row["epochs_run"])
    return events


EVENT_MARKERS = {"best epoch": dict(marker="*", s=70, facecolor="gold", edgecolor="black"),
                 "early stop": dict(marker="s", s=26, facecolor="white", edgecolor="black"),
                 "pruned": dict(marker="X", s=40, facecolor="tab:red", edgecolor="black")}


def draw_events(axis, rows, histories, quantity):
    """Each run's event epochs (event_epochs) on its own curve; returns the events drawn."""
    drawn = set()
    for row in rows:
        for event, epoch in event_epochs(row).items():
            y = value_at(histories, row, quantity, epoch)
            if np.isfinite(y):
                axis.scatter([epoch], [y], zorder=5, linewidths=0.6, **EVENT_MARKERS[event])
                drawn.add(event)
    return drawn


def draw_configuration(axis, curve, style, label, is_best):
    """The mean of the repeats as a line and their min-max as a band; the best run's configuration thicker."""
    colour, dashes = style
    axis.plot(curve.index, curve["mean"], color=colour, linestyle=dashes, label=label,
              linewidth=2.8 if is_best else 1.2, zorder=4 if is_best else 3)
    if (curve["max"] > curve["min"]).any():
        axis.fill_between(curve.index, curve["min"], curve["max"], color=colour, alpha=0.15, linewidth=0)


def annotate_best(axis, histories, best, quantity):
    """An arrow to the best run's curve at its best epoch (else its last), labelled with its name."""
    h = histories.get(best["name"], {})
    if quantity not in h or not len(h.get("epoch", [])):
        return
    epoch = event_epochs(best).get("best epoch", int(h["epoch"][-1]))
    y = value_at(histories, best, quantity, epoch)
    if np.isfinite(y):
        # the lower left corner: loss curves start high, so it is the emptiest place of the panel
        axis.annotate(f"best run\n{best['name']}", xy=(epoch, y), xytext=(0.04, 0.05), textcoords="axes fraction",
                      fontsize=7, ha="left", va="bottom", arrowprops=dict(arrowstyle="->", linewidth=0.8),
                      bbox=dict(boxstyle="round", facecolor="white", alpha=0.85, linewidth=0.5))


def legend_entries(events, repeats, has_best):
    """Legend handles that explain the markers and the band."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    handles = []
    if repeats > 1:
        handles.append(Patch(color="gray", alpha=0.3, label=f"min–max of {repeats} repeats (line: mean)"))
    for event in ("best epoch", "early stop", "pruned"):
        if event in events:
            m = EVENT_MARKERS[event]
            size = 8 if event == "best epoch" else 6
            handles.append(Line2D([], [], linestyle="", marker=m["marker"], markersize=size,
                                  markerfacecolor=m["facecolor"], markeredgecolor=m["edgecolor"], label=event))
    if has_best:
        handles.append(Line2D([], [], color="black", linewidth=2.8, label="thick: the best run's configuration"))
    return handles


def log_axis(axis):
    """A log y-axis; when it spans less than two decades its ticks are labelled in plain numbers (0.3, 2e+04), the
    minor ones too (only 2, 3 and 5 times a power of ten when it spans more than one)."""
    from matplotlib.ticker import FuncFormatter
    axis.set_yscale("log")
    low, high = axis.get_ylim()
    if high / low >= 100:
        return

    def label(value, _):
        mantissa = value / 10 ** np.floor(np.log10(value))
        return f"{value:.2g}" if high / low < 10 or round(mantissa) in (1, 2, 3, 5) else ""
    axis.yaxis.set_major_formatter(FuncFormatter(label))
    axis.yaxis.set_minor_formatter(FuncFormatter(label))
    axis.tick_params(axis="y", which="minor", labelsize=7)


def draw_panels(panels, configs, styles, histories, quantity, best):
    """Every configuration's curve in the panel of its value; returns the curves (best configuration first), the
    events marked and the most repeats of a configuration."""
    curves, events, repeats = [], set(), 1
    for label, value, rows in configs:
        curve = aggregate(rows, histories, quantity)
        if curve is None:
            continue
        is_best = best is not None and any(row["name"] == best["name"] for row in rows)
        draw_configuration(panels[value], curve, styles[label], label, is_best)
        events |= draw_events(panels[value], rows, histories, quantity)
        curves.append(curve)
        repeats = max(repeats, len(rows))
    return curves, events, repeats


def format_panels(panels, by, limits):
    for value, axis in panels.items():
        if limits:
            axis.set_ylim(*limits)
            log_axis(axis)
        axis.set_title(f"{by} = {value}")
        axis.set_xlabel("epoch")
        axis.grid(True, which="both", alpha=0.25)


def best_title(best, metric):
    if best is None:
        return f"no run is {' or '.join(ELIGIBLE_STATUSES)}"
    return f"best run {best['name']} by {metric} = {float(best[metric]):.4g}"


def plot_quantity(plt, ranked, histories, by, quantity, metric, path):
    """One panel per value of `by`; in each, every configuration's curve of `quantity` (mean and band of repeats)."""
    configs = configurations(ranked, by)
    values = list(dict.fromkeys(value for _, value, _ in configs))
    labels = list(dict.fromkeys(label for label, _, _ in configs))  # one style per label, the same in every panel
    styles = {label: line_style(i) for i, label in enumerate(labels)}
    best = best_row(ranked)
    fig, axes = plt.subplots(1, len(values), figsize=(4.4 * len(values), 3.9), sharex=True, sharey=True,
                             squeeze=False)
    panels = dict(zip(values, axes[0]))
    curves, events, repeats = draw_panels(panels, configs, styles, histories, quantity, best)
    if best is not None:
        annotate_best(panels[best[f"param.{by}"]], histories, best, quantity)
    format_panels(panels, by, y_limits(curves, top=max(3, len(curves) // 3)))
    axes[0][0].set_ylabel(CURVE_LABELS.get(quantity, quantity))
    handles = [plt.Line2D([], [], color=styles[key][0], linestyle=styles[key][1], label=key) for key in labels]
    fig.legend(handles=handles + legend_entries(events, repeats, best is not None), loc="upper left",
               bbox_to_anchor=(1.0, 0.95), fontsize=7, frameon=False, title="configuration (line) and markers",
               title_fontsize=7)
    fig.suptitle(f"{CURVE_LABELS.get(quantity, quantity)} by {by}; {best_title(best, metric)}", fontsize=9)
    return save_figure(plt, fig, path)


def save_figure(plt, fig, path):
    """Writes `fig` to `path` with the legend outside the axes kept in the picture; returns the path."""
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def curve_quantities(ranked, histories):
    """The curves to draw: the relative gradient error always, the validation loss when present, the training loss."""
    quantities = ["rel_grad_error"]
    if has_validation(ranked) and any(np.isfinite(h.get("val_loss", [np.nan])).any() for h in histories.values()):
        quantities.append("val_loss")
    return quantities + ["train_loss"]


def plot_curves(ranked, histories, by, out_dir, metric):
    """<quantity>_by_<by>.png for each of curve_quantities; returns the paths written."""
    plt = pyplot()
    column = f"param.{by}"
    if column not in ranked.columns:
        choices = ", ".join(swept_keys(ranked, with_replicates=True)) or "none"
        sys.exit(f"analyze.py: --by {by}: not a swept parameter of this sweep (swept: {choices})")
    os.makedirs(out_dir, exist_ok=True)
    return [plot_quantity(plt, ranked, histories, by, quantity, metric,
                          os.path.join(out_dir, f"{quantity}_by_{by}.png"))
            for quantity in curve_quantities(ranked, histories)]


def sorted_values(values):
    """A parameter's distinct values, numerically ordered when they all read as numbers."""
    distinct = list(dict.fromkeys(values))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def draw_strip(axis, ranked, key, metric, rng):
    """Every run's metric against the values of `key`: a box per value and the runs as points coloured by status;
    the best run's value marked."""
    values = sorted_values(ranked[f"param.{key}"])
    metric_values = ranked[metric].astype(float)
    finite = np.isfinite(metric_values) & (metric_values > 0)
    groups = [metric_values[(ranked[f"param.{key}"] == v) & finite].to_numpy() for v in values]
    axis.boxplot([g if g.size else [np.nan] for g in groups], positions=range(len(values)), widths=0.5,
                 showfliers=False, medianprops=dict(color="black"))
    for i, value in enumerate(values):
        rows = ranked[(ranked[f"param.{key}"] == value) & finite]
        x = i + rng.uniform(-0.15, 0.15, len(rows))
        colours = [STATUS_COLOURS.get(s, "black") for s in rows.get("status", ["done"] * len(rows))]
        axis.scatter(x, rows[metric].astype(float), c=colours, s=14, alpha=0.8, zorder=3, linewidths=0)
    best = best_row(ranked)
    if best is not None and np.isfinite(float(best[metric])):
        axis.scatter([values.index(best[f"param.{key}"])], [float(best[metric])], marker="*", s=180,
                     facecolor="gold", edgecolor="black", zorder=4)
        axis.set_title(f"best: {key} = {best[f'param.{key}']}", fontsize=9)
    axis.set_xticks(range(len(values)))
    axis.set_xticklabels(values, rotation=30 if max(len(str(v)) for v in values) > 6 else 0, fontsize=8)
    log_axis(axis)
    axis.set_xlabel(key + (f"  ({int((~finite).sum())} runs without a value)" if (~finite).any() else ""))
    axis.grid(True, axis="y", which="both", alpha=0.25)


def status_legend(plt, statuses, extra=()):
    handles = [plt.Line2D([], [], linestyle="", marker="o", color=STATUS_COLOURS.get(s, "black"), label=s)
               for s in statuses]
    return handles + list(extra)


def plot_importance(ranked, metric, out_dir):
    """importance.png: one panel per swept key (more than one value, repeats left out); None without such keys or
    without a positive value of `metric`."""
    keys = swept_keys(ranked)
    values = ranked[metric].astype(float)
    if not keys or not (np.isfinite(values) & (values > 0)).any():
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys) + 1, 3.8), sharey=True, squeeze=False)
    rng = np.random.default_rng(0)  # the jitter of the points, the same on every call
    for axis, key in zip(axes[0], keys):
        draw_strip(axis, ranked, key, metric, rng)
    axes[0][0].set_ylabel(metric)
    best_marker = plt.Line2D([], [], linestyle="", marker="*", markersize=12, markerfacecolor="gold",
                             markeredgecolor="black", label="best run")
    statuses = list(dict.fromkeys(ranked["status"])) if "status" in ranked.columns else ["done"]
    fig.legend(handles=status_legend(plt, statuses, [best_marker]), loc="upper left", bbox_to_anchor=(1.0, 0.9),
               fontsize=8, frameon=False, title="run status", title_fontsize=8)
    fig.suptitle(f"{metric} of every run by the value of each swept key (box: quartiles of the runs)", fontsize=9)
    return save_figure(plt, fig, os.path.join(out_dir, "importance.png"))


def prunes(ranked):
    """Whether the sweep prunes: a run was pruned, or a run reached a rung (rung >= 0; -1 means no pruning)."""
    pruned = "status" in ranked.columns and (ranked["status"] == "pruned").any()
    rungs = "rung" in ranked.columns and (ranked["rung"].astype(float) >= 0).any()
    return bool(pruned or rungs)


def plot_pruning(ranked, metric, out_dir):
    """pruning.png: every run as a bar, best at the top, as long as the epochs it trained, coloured by status,
    labelled with the rung it reached; the epochs where runs were pruned as dotted lines. None without pruning."""
    if not prunes(ranked):
        return None
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(8, 0.9 + 0.22 * len(ranked)))
    y = np.arange(len(ranked))[::-1]
    colours = [STATUS_COLOURS.get(s, "black") for s in ranked["status"]]
    axis.barh(y, ranked["epochs_run"].astype(float), color=colours, height=0.7)
    for yi, (_, row) in zip(y, ranked.iterrows()):
        rung = f"rung {int(row['rung'])}  " if "rung" in row and float(row["rung"]) >= 0 else ""
        axis.text(float(row["epochs_run"]), yi, f" {rung}{metric} {float(row[metric]):.3g}", va="center",
                  fontsize=6)
    if "pruned_at_epoch" in ranked.columns:
        for epoch in sorted(set(int(e) for e in ranked["pruned_at_epoch"].astype(float) if e > 0)):
            axis.axvline(epoch, color="gray", linestyle=":", linewidth=0.8)
    axis.set_yticks(y)
    axis.set_yticklabels(ranked["name"], fontsize=6)
    axis.set_xlabel("epochs trained (dotted: epochs where runs were pruned)")
    axis.set_title(f"how far each run got, best {metric} at the top", fontsize=9)
    axis.margins(x=0.25)
    fig.legend(handles=status_legend(plt, list(dict.fromkeys(ranked["status"]))), loc="upper left",
               bbox_to_anchor=(1.0, 0.95), fontsize=8, frameon=False, title="status", title_fontsize=8)
    return save_figure(plt, fig, os.path.join(out_dir, "pruning.png"))


def write_plots(ranked, histories, by, out_dir, metric):
    """Every plot that applies; returns the paths written."""
    paths = plot_curves(ranked, histories, by, out_dir, metric)
    return paths + [p for p in (plot_importance(ranked, metric, out_dir), plot_pruning(ranked, metric, out_dir)) if p]


def parse_arguments(argv):
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
    return parser.parse_args(argv)


def check_outputs(args, by, out_dir):
    """Exits with one line, before anything is written, when an output would write over the results file, or a
    --csv would replace an HDF5 file or cannot be written where it is."""
    if args.csv:
        if same_file(args.csv, args.results):
            sys.exit(f"analyze.py: --csv {args.csv} is the results file {args.results}: give the CSV another name")
        if os.path.isdir(args.csv):
            sys.exit(f"analyze.py: --csv {args.csv} is a folder: give a file name")
        folder = os.path.dirname(os.path.abspath(args.csv))
        if not os.path.isdir(folder):
            sys.exit(f"analyze.py: --csv {args.csv}: no folder {folder}")
        if os.path.exists(args.csv) and starts_as_hdf5(args.csv):
            sys.exit(f"analyze.py: --csv {args.csv} is an HDF5 file: a CSV would replace it; give another name")
    if out_dir is None:
        return
    option = f"--plots {args.plots}" if args.plots else f"the default plots folder {out_dir} (plots/ beside the file)"
    if same_file(out_dir, args.results):
        sys.exit(f"analyze.py: {option} is the results file {args.results}: give a folder with --plots DIR")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        sys.exit(f"analyze.py: {option} is a file, not a folder: give a folder with --plots DIR")
    existing = os.path.dirname(os.path.abspath(out_dir))  # the folder to make it in: its first existing ancestor
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        sys.exit(f"analyze.py: {option}: {existing} is a file, not a folder")
    for name in PLOT_NAMES:
        path = os.path.join(out_dir, name.format(by=by))
        if same_file(path, args.results) or (args.csv and same_file(path, args.csv)):
            sys.exit(f"analyze.py: {option}: the plot {path} would write over "
                     f"{args.results if same_file(path, args.results) else '--csv ' + args.csv}")


def write_outputs(args, table, ranked, histories, by, out_dir, metric):
    """The CSV and the plots; a failure to write (permissions, a full disk) is one line."""
    try:
        if args.csv:
            table.to_csv(args.csv, index=False)
            print(f"wrote {args.csv}")
        if not args.no_plots and by is None:
            print("no swept parameter to group curves by: no plots")
        if out_dir is not None:
            for path in write_plots(ranked, histories, by, out_dir, metric):
                print(f"wrote {path}")
    except OSError as error:
        sys.exit(f"analyze.py: cannot write {error.filename or args.csv}: {error.strerror or short_reason(error)}")


def main(argv=None):
    args = parse_arguments(argv)
    try:
        table, histories = load_runs(args.results)
    except ResultsFileError as error:
        sys.exit(f"analyze.py: {error}")
    metric = args.metric or best_metric(table)
    if metric not in table.columns:
        sys.exit(f"analyze.py: --metric {metric}: {args.results} has no column {metric}")
    by, out_dir = None, None
    if not args.no_plots:
        swept = swept_keys(table)
        by = args.by or (swept[0] if swept else None)
        if by is not None and f"param.{by}" not in table.columns:
            choices = ", ".join(swept_keys(table, with_replicates=True)) or "none"
            sys.exit(f"analyze.py: --by {by}: not a swept parameter of this sweep (swept: {choices})")
        if by is not None:
            out_dir = args.plots or os.path.join(os.path.dirname(os.path.abspath(args.results)), "plots")
    check_outputs(args, by, out_dir)
    ranked = rank_runs(table, metric)

    statuses = table["status"].value_counts().to_dict() if "status" in table.columns else {}
    print(f"{args.results}: {len(table)} runs ({', '.join(f'{n} {s}' for s, n in statuses.items())}), "
          f"ranked by {metric}")
    print(best_run_line(ranked, metric))
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.float_format", "{:.4g}".format):
        print(leaderboard(ranked, metric, args.top).to_string(index=False))

    write_outputs(args, table, ranked, histories, by, out_dir, metric)
    return 0


if __name__ == "__main__":
    sys.exit(main())
