# cli cases: Training options against PyTorch doing the same from the same weights, in float64.
# Each function case_NAME is the ctest test cli.NAME (tests/cli/CMakeLists.txt reads the names here);
# cli_test.sh runs it after lib.sh's helpers, in a fresh $work folder.

case_huber_matches_pytorch() {
  # train.loss huber, float64 full batch, 150 epochs, on data with outliers (both branches of the loss in use):
  # on 1 and 3 ranks each run's train_loss, rel_grad_error and final weights equal PyTorch's training with
  # nn.HuberLoss(delta) to 1e-9 relative (tests/train/pytorch_reference.py), for both engines and in an ensemble,
  # and the two rank counts agree to 1e-10. Then mini-batches stopped at a mid-epoch checkpoint and resumed equal
  # the uninterrupted run bit for bit (the huber sum of the epoch in progress is in the checkpoint).
  "$PYTHON" - "$work/data.h5" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
rng = np.random.default_rng(5)
x = rng.uniform(-2, 2, (200, 2))
grad = 2 * x @ np.array([[2, 0.5], [0.5, 1]]) + np.sin(3 * x)
grad[rng.random(200) < 0.1] += rng.normal(0, 20, (2,))  # outliers, far beyond delta
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x, grad
PY
  cat >"$work/h.yaml" <<YAML
name: huber
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
optimizer: {lr: 0.02}
train: {epochs: 150, seed: 3}
sweep:
  zip:
    train.huber_delta: [0.5, 2.0, 0.5, 0.5, 1.0]
    train.seed: [3, 3, 4, 3, 3]
    train.engine: [analytic, analytic, analytic, autograd, analytic]
    train.loss: [huber, huber, huber, huber, mse]
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/h.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/r$n/results.h5" "$work/data.h5" --tol 1e-9 ||
      fail "-n $n differs from PyTorch"
  done
  "$PYTHON" - "$work/r1/results.h5" "$work/r3/results.h5" <<'PY' || fail "-n 1 and -n 3 differ"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a["runs"]) == sorted(b["runs"]) and len(a["runs"]) == 5
worst = 0.0
for name in a["runs"]:
    ga, gb = a["runs"][name], b["runs"][name]
    for k in ["train_loss", "rel_grad_error", "grad_norm"]:
        worst = max(worst, float((np.abs(ga[k][:] - gb[k][:]) / np.abs(ga[k][:])).max()))
    for p in ga["model"]:
        x, y = ga["model"][p][:], gb["model"][p][:]
        worst = max(worst, float(np.abs(x - y).max() / np.abs(x).max()))
    print(f"{name}: loss {ga.attrs['loss']}, huber_delta {ga.attrs['huber_delta']}, ensemble of {ga.attrs['ensemble']}, "
          f"final train_loss {ga.attrs['final_loss']:.4e}")
print(f"-n 1 vs -n 3: largest relative difference {worst:.2e} (histories and final weights)")
assert worst <= 1e-10
assert max(int(g.attrs["ensemble"]) for g in a["runs"].values()) > 1, "no ensemble"
ids = {g.attrs["id"] for g in a["runs"].values()}
assert len(ids) == 5
PY
  cat >"$work/m.yaml" <<YAML
name: hm
data: {target: file, path: data.h5}
model: {widths: [32, 32], activation: tanh, dtype: float64}
optimizer: {lr: 0.01}
checkpoint: {every_epochs: 1, every_seconds: 0}
train: {epochs: 400, seed: 3, loss: huber, huber_delta: 0.5, batch_size: 30, val_fraction: 0.2}
YAML
  run mpi 2 "$GRADFIT_BIN" --out "$work/ref" "$work/m.yaml"
  expect_rc 0
  stop_at_first_checkpoint "$work/stop" "$work/m.yaml"
  expect_rc 75
  run mpi 2 "$GRADFIT_BIN" --out "$work/stop" "$work/m.yaml"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "the resumed huber run differs"
import sys, h5py, numpy as np
w = sys.argv[1]
a, b = (h5py.File(f"{w}/{r}/results.h5")["runs/hm"] for r in ("ref", "stop"))
for k in ("train_loss", "rel_grad_error", "val_loss", "grad_norm"):
    assert np.array_equal(a[k][:], b[k][:]), k
for p in a["model"]:
    assert np.array_equal(a["model"][p][:], b["model"][p][:]), p
print("huber, mini-batches: stopped at a checkpoint and resumed, histories and weights bit for bit")
PY
}

case_features_match_pytorch() {
  # model.features, float64: each Adam run's histories and final weights equal PyTorch's training of the same MLP
  # on the same phi(x) (tests/train/pytorch_reference.py) to 1e-9, on 1 and 3 ranks, both engines (the analytic
  # runs as an ensemble), full batch and in gradfit_dist's mini-batches, with and without data.standardize (then
  # on phi's scaled features); the rank counts agree to 1e-10, L-BFGS included. (L-BFGS against
  # PyTorch is left to cli.lbfgs_matches_pytorch: on the molecule its first line search fits a cubic to losses
  # 2e-8 apart, where a last-bit difference of the summed loss moves the next trial step by 30 %.) eval is
  # invariant to rotating and translating the molecules, and to shifting an angle by its period, to 1e-12;
  # export's gradient equals eval's to 1e-12.
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
rng = np.random.default_rng(5)
# 4 atoms, V = sum over pairs of (d - 1.5)^2 / d, a function of the distances alone.
base = np.array([[0, 0, 0], [1.5, 0, 0], [0.5, 1.3, 0], [0.5, 0.5, 1.2]])
x = base[None] + 0.15 * rng.normal(size=(300, 4, 3))
grad = np.zeros_like(x)
for i in range(4):
    for j in range(i + 1, 4):
        r = x[:, i] - x[:, j]
        d = np.linalg.norm(r, axis=1, keepdims=True)
        dv = 2 * (d - 1.5) / d - (d - 1.5) ** 2 / d ** 2
        grad[:, i] += dv * r / d
        grad[:, j] -= dv * r / d
with h5py.File(sys.argv[1] + "/molecule.h5", "w") as f:
    f["x"], f["grad"] = x.reshape(300, 12), grad.reshape(300, 12)
# An angle and a length: V = sin(t) y + y^2 / 2.
t = rng.uniform(-4, 4, (300, 2))
with h5py.File(sys.argv[1] + "/angles.h5", "w") as f:
    f["x"], f["grad"] = t, np.stack([np.cos(t[:, 0]) * t[:, 1], np.sin(t[:, 0]) + t[:, 1]], 1)
PY
  # train_like_pytorch SWEEP [--run NAME]...: $work/SWEEP.yaml on $n ranks, its runs (or those named) as PyTorch's
  # on $work/$kind.h5.
  train_like_pytorch() {
    local sweep=$1
    shift
    run mpi "$n" "$GRADFIT_BIN" --out "$work/$sweep$n" "$work/$sweep.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/$sweep$n/results.h5" "$work/$kind.h5" --tol 1e-9 "$@" ||
      fail "$sweep: -n $n differs from PyTorch"
  }
  for kind in molecule angles; do
    if [ $kind = molecule ]; then features='features: inverse_distances'; else
      features='features: periodic, periods: [6.283185307179586, 0]'; fi
    cat >"$work/$kind.yaml" <<YAML
name: $kind
data: {target: file, path: $kind.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64, $features}
train: {epochs: 60, seed: 2}
sweep:
  grid: {train.engine: [analytic, autograd]}
  zip: {optimizer.name: [adam, adam, lbfgs], optimizer.lr: [0.01, 0.003, 1]}
YAML
    cat >"$work/${kind}_std.yaml" <<YAML
name: ${kind}_std
data: {target: file, path: $kind.h5, standardize: true}
model: {widths: [16, 16], activation: softplus, dtype: float64, $features}
train: {epochs: 60, seed: 2}
sweep:
  grid: {train.engine: [analytic, autograd], optimizer.lr: [0.01, 0.003]}
YAML
    cat >"$work/${kind}_mb.yaml" <<YAML
name: ${kind}_mb
data: {target: file, path: $kind.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64, $features}
train: {epochs: 20, seed: 2, batch_size: 64}
sweep:
  grid: {train.engine: [analytic, autograd], optimizer.lr: [0.01, 0.003]}
YAML
    for n in 1 3; do
      train_like_pytorch "$kind" --run engine=analytic,name=adam,lr=0.01 --run engine=analytic,name=adam,lr=0.003 \
        --run engine=autograd,name=adam,lr=0.01 --run engine=autograd,name=adam,lr=0.003
      train_like_pytorch "${kind}_std"
      train_like_pytorch "${kind}_mb"
    done
    "$PYTHON" tests/cli/compare_rank_counts.py "$work/${kind}_std1/results.h5" "$work/${kind}_std3/results.h5" \
      --tol 1e-10 || fail "$kind, standardized: -n 1 and -n 3 differ"
    run mpi 2 "$GRADFIT_BIN" export "$work/${kind}_std3/results.h5" --run best --out "$work/${kind}_std.pt"
    expect_rc 0
    "$PYTHON" tests/cli/compare_rank_counts.py "$work/${kind}1/results.h5" "$work/${kind}3/results.h5" --tol 1e-10 ||
      fail "$kind: -n 1 and -n 3 differ"
    "$PYTHON" tests/cli/compare_rank_counts.py "$work/${kind}_mb1/results.h5" "$work/${kind}_mb3/results.h5" \
      --tol 1e-10 || fail "$kind: mini-batches, -n 1 and -n 3 differ"
    run mpi 2 "$GRADFIT_BIN" export "$work/${kind}3/results.h5" --run best --out "$work/$kind.pt"
    expect_rc 0
  done
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the moved points"
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(w + "/molecule.h5") as f:
    x = f["x"][:].reshape(-1, 4, 3)
c, s = np.cos(0.9), np.sin(0.9)
rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
with h5py.File(w + "/molecule_moved.h5", "w") as f:
    f["x"] = (x @ rotation.T + np.array([2.0, -1.0, 0.5])).reshape(-1, 12)
np.save(w + "/rotation.npy", rotation)
with h5py.File(w + "/angles.h5") as f:
    t = f["x"][:]
with h5py.File(w + "/angles_moved.h5", "w") as f:
    f["x"] = t + np.array([2 * np.pi, 0])
PY
  for kind in molecule angles; do
    for points in $kind ${kind}_moved; do
      for fit in $kind ${kind}_std; do
        run mpi 2 "$GRADFIT_BIN" eval "$work/${fit}3/results.h5" "$work/$points.h5" --run best \
          --out "$work/p_${fit}_$points.h5"
        expect_rc 0
      done
    done
  done
  "$PYTHON" - "$work" <<'PY' || fail "invariance or export"
import sys, h5py, numpy as np, torch
w = sys.argv[1]
rotation = np.load(w + "/rotation.npy")
for kind in ("molecule", "angles"):
  for fit in (kind, kind + "_std"):
    with h5py.File(f"{w}/p_{fit}_{kind}.h5") as a, h5py.File(f"{w}/p_{fit}_{kind}_moved.h5") as b, \
            h5py.File(f"{w}/{kind}.h5") as d:
        v, g, v_moved, g_moved, x = a["value"][:], a["grad"][:], b["value"][:], b["grad"][:], d["x"][:]
    if kind == "molecule":  # the moved gradient, turned back
        g_moved = (g_moved.reshape(-1, 4, 3) @ rotation).reshape(-1, 12)
    dv = np.abs(v_moved - v).max() / np.abs(v).max()
    dg = np.linalg.norm(g_moved - g) / np.linalg.norm(g)
    module = torch.jit.load(f"{w}/{fit}.pt")
    with torch.no_grad():
        g_export = module.gradient(torch.from_numpy(x)).numpy()
        v_export = module.forward(torch.from_numpy(x)).numpy()
    de = max(np.linalg.norm(g_export - g) / np.linalg.norm(g), np.abs(v_export - v).max() / np.abs(v).max())
    print(f"{fit}: moved points change V by {dv:.2e}, dV/dx by {dg:.2e} (relative); export vs eval {de:.2e}")
    assert dv <= 1e-12 and dg <= 1e-12 and de <= 1e-12, fit
PY
  # --dry-run shows the features; a warm start from a run without them is one line naming both.
  run "$GRADFIT_BIN" --dry-run "$work/molecule.yaml"
  expect_rc 0
  expect_in out "^1 +[0-9a-f]{12} +inverse_distances\(12\)-6-16-16-1 +softplus "
  printf 'data: {target: file, path: molecule.h5}\nmodel: {widths: [16, 16], dtype: float64}\n%s\n' \
    'train: {epochs: 2, init_from: "molecule1/results.h5#engine=analytic,name=adam,lr=0.01"}' >"$work/warm.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/warm" "$work/warm.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*init_from .* is inverse_distances\(12\)-6-16-16-1, this run 12-16-16-1 "
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected one error line"
  # Two atoms at one place (row 250, on the second rank's shard): one line naming the file and the row.
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py
with h5py.File(sys.argv[1] + "/molecule.h5") as f, h5py.File(sys.argv[1] + "/clash.h5", "w") as g:
    x = f["x"][:]
    x[250, 6:9] = x[250, 3:6]
    g["x"], g["grad"] = x, f["grad"][:]
PY
  sed 's/path: molecule.h5/path: clash.h5/' "$work/molecule.yaml" >"$work/clash.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/clash" "$work/clash.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: run .*clash.h5: row 250: atoms 1 and 2 are at the same place \\(model.features"
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected one error line"
}

case_schedules_match_pytorch() {
  # Schedules, AdamW and clipping, float64 full batch, 150 epochs: on 1 and on 3 ranks each run's train_loss and
  # lr histories and final weights equal PyTorch's training of the same model (tests/train/pytorch_reference.py:
  # torch.optim and torch.optim.lr_scheduler) to 1e-9 relative, and the two rank counts agree to 1e-10.
  "$PYTHON" - "$work/data.h5" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
x = np.random.default_rng(3).uniform(-2, 2, (200, 2))
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x, 2 * x @ np.array([[2, 0.5], [0.5, 1]]) + np.sin(3 * x)
PY
  cat >"$work/s.yaml" <<YAML
name: sched
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
optimizer: {lr: 0.02, lr_final: 0.0005, warmup_epochs: 10, plateau_patience: 3, plateau_factor: 0.5}
train: {epochs: 150, seed: 3}
sweep:
  zip:
    optimizer.schedule: [exponential, cosine, plateau, cosine, constant, constant, exponential]
    optimizer.name: [adam, adam, adam, adam, adamw, adam, sgd]
    optimizer.weight_decay: [0, 0, 0, 0, 0.2, 0, 0]
    optimizer.max_grad_norm: [0, 0, 0, 0, 0, 1.5, 2.0]
    optimizer.momentum: [0, 0, 0, 0, 0, 0, 0.9]
    train.seed: [3, 3, 3, 4, 3, 3, 3]
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/s.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/r$n/results.h5" "$work/data.h5" --tol 1e-9 ||
      fail "-n $n differs from PyTorch"
  done
  # /summary names each run's schedule and the rate it ends at, beside the rate it starts at.
  "$PYTHON" - "$work/r1/results.h5" <<'PY' || fail "summary schedule columns"
import sys, h5py
s = h5py.File(sys.argv[1], "r")["summary"][:]
got = [(v.decode(), float(f)) for v, f in zip(s["schedule"], s["lr_final"])]
assert sorted(set(v for v, _ in got)) == ["constant", "cosine", "exponential", "plateau"], got
assert all(f == 0.0005 for _, f in got), got
PY
  "$PYTHON" - "$work/r1/results.h5" "$work/r3/results.h5" <<'PY' || fail "-n 1 and -n 3 differ"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a["runs"]) == sorted(b["runs"]) and len(a["runs"]) == 7
worst = 0.0
for name in a["runs"]:
    ga, gb = a["runs"][name], b["runs"][name]
    for k in ["train_loss", "rel_grad_error", "grad_norm", "lr"]:
        worst = max(worst, float((np.abs(ga[k][:] - gb[k][:]) / np.abs(ga[k][:])).max()))
    for p in ga["model"]:
        x, y = ga["model"][p][:], gb["model"][p][:]
        worst = max(worst, float(np.abs(x - y).max() / np.abs(x).max()))
    lr, norms = ga["lr"][:], ga["grad_norm"][:]
    s = ga.attrs
    # What each option must have done for the comparison to mean something.
    if s["schedule"] in ("exponential", "cosine", "plateau"):
        assert len(set(lr)) > 2 and lr[-1] < lr.max() / 4, (name, lr.max(), lr[-1])
    if s["schedule"] == "plateau":
        assert len(set(lr)) < 20, (name, "plateau reduced at", len(set(lr)) - 1, "epochs")
    if s["max_grad_norm"] > 0:
        assert (norms > s["max_grad_norm"]).sum() > 10 and (norms < s["max_grad_norm"]).sum() > 10, name
    print(f"{name}: lr {lr[0]:.4g} -> {lr[-1]:.4g} ({len(set(lr))} rates), ensemble of {s['ensemble']}, "
          f"gradient norm above max_grad_norm in {(norms > s['max_grad_norm']).sum() if s['max_grad_norm'] else 0} epochs")
print(f"-n 1 vs -n 3: largest relative difference {worst:.2e} (histories and final weights)")
assert worst <= 1e-10
assert max(int(g.attrs["ensemble"]) for g in a["runs"].values()) > 1, "no ensemble"
PY
  # Mini-batches with validation (plateau on the validation loss), on 3 ranks: each lr history is the one PyTorch's
  # scheduler gives when fed the losses the run recorded, bit for bit.
  cat >"$work/v.yaml" <<YAML
name: val
data: {target: gaussian_wells, dim: 2, sampling: uniform, samples: 400, well_width: 1.5}
model: {widths: [16, 16], activation: tanh, dtype: float64}
optimizer: {lr: 0.02, plateau_patience: 2, plateau_factor: 0.5, warmup_epochs: 5}
train: {epochs: 120, batch_size: 64, val_fraction: 0.25}
sweep:
  grid: {optimizer.schedule: [plateau, cosine, exponential]}
YAML
  run mpi 3 "$GRADFIT_BIN" --out "$work/v" "$work/v.yaml"
  expect_rc 0
  "$PYTHON" tests/train/pytorch_reference.py "$work/v/results.h5" --schedule-only >"$work/replay" ||
    { cat "$work/replay"; fail "a schedule differs from PyTorch's"; }
  cat "$work/replay"
  grep -Eq "plateau on val_loss, 120 epochs, ([3-9]|[1-9][0-9]) rates" "$work/replay" || fail "plateau never reduced"
}

case_lbfgs_matches_pytorch() {
  # L-BFGS, float64 full batch, 40 epochs (one iteration each, strong-Wolfe line search): on 1 and on 3 ranks each
  # run's train_loss and lr histories, function evaluations and final weights equal PyTorch's
  # torch.optim.LBFGS(max_iter=1, line_search_fn='strong_wolfe', tolerance_grad, tolerance_change) stepped once per
  # epoch (tests/train/pytorch_reference.py) to 1e-9 relative, and the two rank counts agree to 1e-10. Two runs
  # raise a tolerance until it stops their steps partway.
  "$PYTHON" - "$work/data.h5" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
x = np.random.default_rng(3).uniform(-2, 2, (600, 2))
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x, 2 * x @ np.array([[2, 0.5], [0.5, 1]]) + np.sin(3 * x)
PY
  cat >"$work/l.yaml" <<YAML
name: lbfgs
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
optimizer: {name: lbfgs, lr: 1}
train: {epochs: 40, seed: 3}
sweep:
  zip:
    optimizer.history_size: [100, 4, 10, 100, 100]
    optimizer.schedule: [constant, constant, cosine, constant, constant]
    optimizer.lr: [1, 1, 0.5, 1, 1]
    model.activation: [softplus, tanh, softplus, softplus, softplus]
    optimizer.tolerance_change: [1e-9, 1e-9, 1e-9, 1e-2, 1e-9]
    optimizer.tolerance_grad: [1e-7, 1e-7, 1e-7, 1e-7, 0.1]
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/l.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/r$n/results.h5" "$work/data.h5" --tol 1e-9 ||
      fail "-n $n differs from PyTorch"
  done
  # 1 against 3 ranks (600 rows in blocks of 38: 228, 190 and 182 rows per rank): L-BFGS sums block by block,
  # compensated, so the histories (the gradient norm near the minimum too) and weights agree to the last bit as a
  # rule; plain sums in another grouping differ by ~1e-16, which the line search amplifies to ~6e-10 in the
  # gradient norm of the last epochs.
  "$PYTHON" tests/cli/compare_rank_counts.py "$work/r1/results.h5" "$work/r3/results.h5" --tol 1e-10 ||
    fail "-n 1 and -n 3 differ"
  "$PYTHON" - "$work/r1/results.h5" <<'PY' || fail "the runs do not test what they should"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert len(f["runs"]) == 5
for name, g in f["runs"].items():
    s, loss = g.attrs, g["train_loss"][:]
    # What the comparison needs to mean something: line searches that evaluate more than once, a falling loss.
    assert s["function_evaluations"] > len(loss) and loss[-1] < loss[0] / 20, (name, s["function_evaluations"], loss)
    assert s["ensemble"] == 1, name
    # The runs with a tolerance raised stop stepping within the 40 epochs (the loss stays put); the others do not.
    stalled = int((loss[1:] == loss[:-1]).sum())
    assert (stalled >= 10) == (s["tolerance_change"] > 1e-9 or s["tolerance_grad"] > 1e-7), (name, stalled)
    print(f"{name}: loss {loss[0]:.4g} -> {loss[-1]:.4g} in {len(loss)} epochs, "
          f"{s['function_evaluations']} function evaluations, {stalled} epochs without a step")
PY
}

case_ema_matches_pytorch() {
  # The moving average of the weights (train.ema_decay), float64 full batch, 120 epochs (L-BFGS: 40): on 1 and on 3
  # ranks each run's train_loss history, its saved weights (the average's) and their final_loss equal PyTorch's
  # AveragedModel(avg_fn=decay * e + (1 - decay) * w) updated after every step (tests/train/pytorch_reference.py)
  # to 1e-9 relative, two of them trained as an ensemble; with mini-batches and validation (the average judged,
  # early stopping on it) the two rank counts agree to 1e-10, as they do on the full-batch runs.
  "$PYTHON" - "$work/data.h5" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
x = np.random.default_rng(3).uniform(-2, 2, (200, 2))
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x, 2 * x @ np.array([[2, 0.5], [0.5, 1]]) + np.sin(3 * x)
PY
  cat >"$work/e.yaml" <<YAML
name: ema
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
train: {epochs: 120, seed: 3}
sweep:
  zip:
    optimizer.name: [adam, adam, sgd, lbfgs]
    optimizer.lr: [0.02, 0.01, 0.01, 1]
    optimizer.momentum: [0, 0, 0.9, 0]
    train.seed: [3, 4, 3, 3]
    train.epochs: [120, 120, 120, 40]
    train.ema_decay: [0.9, 0.9, 0.95, 0.8]
YAML
  cat >"$work/m.yaml" <<YAML
name: ema_minibatch
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: tanh, dtype: float64}
optimizer: {lr: 0.02}
train: {epochs: 60, batch_size: 32, val_fraction: 0.25, patience: 3, ema_decay: 0.9}
sweep:
  grid: {optimizer.lr: [0.02, 0.005]}
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/e.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/r$n/results.h5" "$work/data.h5" --tol 1e-9 ||
      fail "-n $n differs from PyTorch"
    run mpi $n "$GRADFIT_BIN" --out "$work/m$n" "$work/m.yaml"
    expect_rc 0
  done
  "$PYTHON" tests/cli/compare_rank_counts.py "$work/r1/results.h5" "$work/r3/results.h5" --tol 1e-10 ||
    fail "-n 1 and -n 3 differ (full batch)"
  "$PYTHON" tests/cli/compare_rank_counts.py "$work/m1/results.h5" "$work/m3/results.h5" --tol 1e-10 ||
    fail "-n 1 and -n 3 differ (mini-batches)"
  "$PYTHON" - "$work/r1/results.h5" "$work/m1/results.h5" <<'PY' || fail "the runs do not test what they should"
import sys, h5py
full, mini = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert max(int(g.attrs["ensemble"]) for g in full["runs"].values()) == 2, "no ensemble"
statuses = {g.attrs["status"] for g in mini["runs"].values()}
for f in (full, mini):
    for name, g in f["runs"].items():
        print(f"{name}: {g.attrs['status']} after {len(g['epoch'])} epochs, ema_decay {g.attrs['ema_decay']}, "
              f"best_epoch {g.attrs['best_epoch']}, ensemble of {g.attrs['ensemble']}")
assert "early_stopped" in statuses, statuses
PY
}
