# cli cases: Data files: bad ones, damaged ones, standardization, per-sample weights, bad molecular data.
# Each function case_NAME is the ctest test cli.NAME (tests/cli/CMakeLists.txt reads the names here);
# cli_test.sh runs it after lib.sh's helpers, in a fresh $work folder.

case_bad_data_file() {
  echo "not hdf5" >"$work/grads.h5"
  printf 'data:\n  target: file\n  path: grads.h5\n' >"$work/file.yaml"
  run "$GRADFIT_BIN" --out "$work/r" "$work/file.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: cannot open HDF5 file '.*grads.h5' \(missing, or not an HDF5 file\): file signature not found$"
  [ ! -e "$work/r" ] || fail "an output directory was created"
}

case_bad_data_on_two_ranks() {
  # A shape mismatch that every rank sees: one message, exit code 1, nobody left waiting in a collective.
  printf '1 2 3 4 5 6\n' >"$work/x.txt"
  printf '1 2 3 4 5 6 7 8 9\n' >"$work/g.txt"
  printf 'PATH x\nINPUT-CLASS TEXTFP\nRANK 2\nDIMENSION-SIZES 3 2\n' >"$work/x.cfg"
  printf 'PATH grad\nINPUT-CLASS TEXTFP\nRANK 2\nDIMENSION-SIZES 3 3\n' >"$work/g.cfg"
  "$H5IMPORT" "$work/x.txt" -c "$work/x.cfg" "$work/g.txt" -c "$work/g.cfg" -o "$work/grads.h5" >/dev/null ||
    fail "h5import failed"
  printf 'data:\n  target: file\n  path: grads.h5\n' >"$work/file.yaml"
  run timeout 60 "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --out "$work/r" "$work/file.yaml"
  expect_rc 1
  expect_in err "grads.h5: dataset 'grad' has shape \(3, 3\) but 'x' has \(3, 2\); they must match"
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected exactly one error line"
}

case_damaged_data_chunk() {
  # A damaged compressed chunk in a user's data file, read by one rank of two: one error line that names the file,
  # the dataset and the rows, exit code 1, and no output folder (nor the parent folder the job created for it).
  "$PYTHON" - "$work/grads.h5" <<'PY' || fail "cannot write the data file"
import sys, h5py, numpy as np
x = np.random.default_rng(0).normal(size=(3000, 2))
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("x", data=x, chunks=(500, 2), compression="gzip")
    f.create_dataset("grad", data=2 * x, chunks=(500, 2), compression="gzip")
    info = f["grad"].id.get_chunk_info(4)  # rows 2000..2500: in rank 1's shard, 1504..3000
with open(sys.argv[1], "r+b") as raw:
    raw.seek(info.byte_offset + 100); raw.write(b"\x55" * 300)
PY
  printf 'data: {target: file, path: grads.h5}\nmodel: {widths: [8]}\ntrain: {epochs: 3}\n' >"$work/file.yaml"
  label=damaged_chunk
  timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --out "$work/new/r/" "$work/file.yaml"
  expect_one_error "^gradfit_dist: error: run .*: cannot read rows 1504\.\.3000 of 'grad' in '.*grads\.h5': "
  grep -q "MPI_ABORT" "$work/err" && fail "the job was aborted instead of ending together"
  [ ! -e "$work/new" ] || fail "the output folder, or its new parent, was left behind"
}

case_group_bad_data() {
  # A sweep over four data files, the second with a NaN: the group that meets it fails, the job ends (exit 1, one
  # error line naming the run and the cause) without waiting for the other groups, whose runs stop with a
  # checkpoint. Once the file is fixed, the same command finishes the sweep.
  write_data_file "$work/good1.h5"
  write_data_file "$work/good2.h5"
  write_data_file "$work/good3.h5"
  for n in 2 4; do
    for k in 1 2; do
      label="n=$n ranks_per_run=$k"
      write_data_file "$work/bad.h5" 3
      cat >"$work/nan$n$k.yaml" <<YAML
name: nan
ranks_per_run: $k
ensemble_size: 1
data: {target: file, path: good1.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
train: {epochs: 2000}
sweep:
  grid: {data.path: [good1.h5, bad.h5, good2.h5, good3.h5]}
YAML
      timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n $n "$GRADFIT_BIN" --progress lines --out "$work/r$n$k" "$work/nan$n$k.yaml"
      expect_one_error "^gradfit_dist: error: run path=bad\.h5: .*/bad\.h5: dataset 'grad' has NaN or Inf in row 3$"
      check_after_group_failure "$work/r$n$k" "path=bad.h5"
      [ -z "$(ls "$work/r$n$k/checkpoints" | grep "$(grep -o '[0-9a-f]\{12\} path=bad.h5' "$work/out" | cut -c1-12)")" ] ||
        fail "$label: a checkpoint of the failed run"
      if [ "$n$k" = 22 ]; then  # one group, one run after another: the run before the bad file finished
        "$H5DUMP" -a /runs/path=good1.h5/status "$work/r$n$k/results.h5" | grep -q '"done"' ||
          fail "$label: the run trained before the failure is not in results.h5 as done"
      fi
      write_data_file "$work/bad.h5"
      run timeout 60 "$MPIEXEC" $MPIEXEC_FLAGS -n $n "$GRADFIT_BIN" --progress lines --out "$work/r$n$k" "$work/nan$n$k.yaml"
      expect_rc 0
      "$PYTHON" -c 'import sys, h5py; r = h5py.File(sys.argv[1], "r")["runs"]
assert sorted(r[n].attrs["status"] for n in r) == ["done"] * 4, {n: r[n].attrs["status"] for n in r}' \
        "$work/r$n$k/results.h5" || fail "$label: the rerun did not finish every run"
    done
  done
}

case_standardize() {
  # data.standardize on x in [0, 1000]^2 and S ~ 1e4 trains the same model as on its standardized twin (the same
  # data transformed by the run's own mu, sigma, s, v0): histories and weights equal; eval and export of the
  # standardized run predict in the original units, matching the run's final metrics, and the twin's predictions
  # scaled back.
  write_large_units_file "$work/big.h5"
  write_std_run "$work/std.yaml" big.h5 true
  write_std_run "$work/raw.yaml" big.h5 false
  for r in std raw; do run "$GRADFIT_BIN" --out "$work/$r" "$work/$r.yaml"; expect_rc 0; done
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the twin"
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(w + "/std/results.h5") as r, h5py.File(w + "/big.h5") as d, h5py.File(w + "/twin.h5", "w") as t:
    s = r["runs/std/standardization"]
    mu, sigma = s["input_mean"][:], s["input_scale"][:]
    scale, offset = s.attrs["value_scale"], s.attrs["value_offset"]
    print(f"mu {mu}, sigma {sigma}, s {scale:.6e}, v0 {offset:.6e}")
    t["x"] = (d["x"][:] - mu) / sigma
    t["grad"] = d["grad"][:] * (sigma / scale)
    t["value"] = (d["value"][:] - offset) / scale
    g = t["grad"][:]
    assert abs(np.sqrt(np.mean(g * g)) - 1) < 1e-12, "S~ has no unit RMS"
    assert np.abs(t["x"][:].mean(0)).max() < 1e-12 and np.abs(t["x"][:].std(0) - 1).max() < 1e-12
PY
  write_std_run "$work/twin.yaml" twin.h5 false
  run "$GRADFIT_BIN" --out "$work/twin" "$work/twin.yaml"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "the standardized run differs from its twin"
import sys, h5py, numpy as np
w = sys.argv[1]
std, twin, raw = (h5py.File(f"{w}/{r}/results.h5")["runs/std"] for r in ("std", "twin", "raw"))
for k in ("train_loss", "rel_grad_error"):
    d = np.abs(std[k][:] - twin[k][:]).max() / np.abs(twin[k][:]).max()
    print(f"history {k}: standardized run vs twin, max relative difference {d:.3e}")
    assert d <= 1e-12, k
for p in std["model"]:
    assert np.allclose(std["model"][p][:], twin["model"][p][:], rtol=1e-12, atol=1e-14), p
print(f"last epoch rel_grad_error (model units): standardized {std['rel_grad_error'][-1]:.6e}, twin "
      f"{twin['rel_grad_error'][-1]:.6e}; without standardization {raw['rel_grad_error'][-1]:.6e}")
print(f"final_rel_grad_error: standardized (user units) {std.attrs['final_rel_grad_error']:.6e}, twin "
      f"{twin.attrs['final_rel_grad_error']:.6e}, raw {raw.attrs['final_rel_grad_error']:.6e}")
assert abs(std.attrs["final_rel_grad_error"] / twin.attrs["final_rel_grad_error"] - 1) < 0.05
assert std.attrs["standardize"] == 1 and twin.attrs["standardize"] == 0 and "standardization" not in twin
assert std.attrs["final_rel_grad_error"] < 0.2 * raw.attrs["final_rel_grad_error"], "standardizing did not help"
PY
  run "$GRADFIT_BIN" eval "$work/std/results.h5" "$work/big.h5" --out "$work/pstd.h5"
  expect_rc 0
  rel=$(awk '/^relative gradient error/ {print $NF}' "$work/out")
  run "$GRADFIT_BIN" eval "$work/twin/results.h5" "$work/twin.h5" --out "$work/ptwin.h5"
  expect_rc 0
  run "$GRADFIT_BIN" export "$work/std/results.h5" --out "$work/std.pt"
  expect_rc 0
  "$PYTHON" - "$work" "$rel" <<'PY' || fail "eval or export of the standardized run"
import sys, h5py, numpy as np, torch
w, rel = sys.argv[1], float(sys.argv[2])
with h5py.File(w + "/std/results.h5") as r, h5py.File(w + "/big.h5") as d, h5py.File(w + "/pstd.h5") as p, \
     h5py.File(w + "/ptwin.h5") as t:
    g = r["runs/std"]
    s = g["standardization"]
    sigma, scale, offset = s["input_scale"][:], s.attrs["value_scale"], s.attrs["value_offset"]
    final = g.attrs["final_rel_grad_error"]
    x, S, pv, pg = d["x"][:], d["grad"][:], p["value"][:], p["grad"][:]
    tv, tg = t["value"][:], t["grad"][:]
own = np.linalg.norm(pg - S) / np.linalg.norm(S)
print(f"eval in user units: printed rel error {rel:.9e}, from PRED.h5 {own:.9e}, run's final_rel_grad_error {final:.9e}")
assert abs(rel - own) <= 1e-6 * own and abs(own - final) <= 1e-10 * final
dg = np.abs(pg - tg * (scale / sigma)).max() / np.abs(pg).max()
dv = np.abs(pv - (tv * scale + offset)).max() / np.abs(pv).max()
print(f"eval of the standardized run vs the twin's eval scaled back: grad {dg:.3e}, value {dv:.3e}")
assert dg <= 1e-12 and dv <= 1e-12
m = torch.jit.load(w + "/std.pt")
xt = torch.from_numpy(x)
with torch.no_grad():
    ev, eg = m(xt).numpy(), m.gradient(xt).numpy()
dv, dg = np.abs(ev - pv).max() / np.abs(pv).max(), np.abs(eg - pg).max() / np.abs(pg).max()
print(f"export vs eval (user units): value {dv:.3e}, grad {dg:.3e}")
assert dv <= 1e-12 and dg <= 1e-12
PY
}

case_standardize_ranks_resume() {
  # With validation rows, a value term and mini-batches: mu, sigma, s, v0 come from the training rows alone (checked
  # against numpy with the same hold-out hash), 1 and 3 ranks give the same run, and a run stopped at a checkpoint
  # and continued equals the uninterrupted one bit for bit.
  write_large_units_file "$work/big.h5"
  write_std_run "$work/std.yaml" big.h5 true ", val_fraction: 0.25, value_weight: 0.1, batch_size: 100" 60
  for n in 1 3; do run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/std.yaml"; expect_rc 0; done
  "$PYTHON" - "$work" <<'PY' || fail "1 and 3 ranks differ, or the standardization is not the training rows'"
import sys, h5py, numpy as np
w = sys.argv[1]
a, b = (h5py.File(f"{w}/r{n}/results.h5")["runs/std"] for n in (1, 3))
M = (1 << 64) - 1
def held_out(N, fraction, seed):  # train/batches.cpp: holdout_rows
    threshold = int(fraction * 2.0 ** 64)
    out = np.zeros(N, bool)
    for i in range(N):
        z = (seed * 0x9e3779b97f4a7c15 + i + 0x632be59bd9b4e019) & M
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
        out[i] = (z ^ (z >> 31)) < threshold
    return out
with h5py.File(w + "/big.h5") as d:
    x, S, v = d["x"][:], d["grad"][:], d["value"][:]
train = ~held_out(len(x), 0.25, 2)
mu = x[train].mean(0); sigma = x[train].std(0)
scale = np.sqrt(np.mean((S[train] * sigma) ** 2)); offset = v[train].mean()
for g in (a, b):
    s = g["standardization"]
    for name, got, want in (("mu", s["input_mean"][:], mu), ("sigma", s["input_scale"][:], sigma),
                            ("s", s.attrs["value_scale"], scale), ("v0", s.attrs["value_offset"], offset)):
        d = np.abs(np.asarray(got) - want).max() / np.abs(want).max()
        print(f"ranks {g.attrs['ranks']}: {name} vs numpy over the {train.sum()} training rows: {d:.2e}")
        assert d <= 1e-14, name
for k in ("train_loss", "rel_grad_error", "val_loss"):
    d = np.abs(a[k][:] - b[k][:]).max() / np.abs(a[k][:]).max()
    print(f"history {k}: 1 vs 3 ranks max relative difference {d:.3e}")
    assert d <= 1e-10, k
for k in ("final_loss", "final_rel_grad_error", "final_val_loss"):
    assert abs(a.attrs[k] - b.attrs[k]) <= 1e-10 * abs(a.attrs[k]), k
print(f"final (user units): loss {a.attrs['final_loss']:.6e}, rel_grad_error {a.attrs['final_rel_grad_error']:.6e}, "
      f"val_loss {a.attrs['final_val_loss']:.6e}; best_val_loss (model units) {a.attrs['best_val_loss']:.6e}")
PY
  # Resume: a checkpoint every epoch, SIGTERM once the first is there, then the same command again.
  sed -i -e 's/^train: /checkpoint: {every_epochs: 1, every_seconds: 0}\ntrain: /' -e 's/epochs: 60,/epochs: 600,/' \
    "$work/std.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/ref" "$work/std.yaml"
  expect_rc 0
  stop_at_first_checkpoint "$work/stop" "$work/std.yaml"
  expect_rc 75
  run mpi 2 "$GRADFIT_BIN" --out "$work/stop" "$work/std.yaml"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "the resumed run differs"
import sys, h5py, numpy as np
w = sys.argv[1]
a, b = (h5py.File(f"{w}/{r}/results.h5")["runs/std"] for r in ("ref", "stop"))
for k in ("train_loss", "rel_grad_error", "val_loss", "grad_norm"):
    assert np.array_equal(a[k][:], b[k][:]), k
for p in a["model"]:
    assert np.array_equal(a["model"][p][:], b["model"][p][:]), p
for k in ("final_loss", "final_rel_grad_error", "final_val_loss"):
    assert a.attrs[k] == b.attrs[k], k
for k in ("input_mean", "input_scale"):
    assert np.array_equal(a["standardization"][k][:], b["standardization"][k][:]), k
print("stopped at a checkpoint and resumed: histories, weights, final metrics and standardization bit for bit")
PY
}

case_standardize_warm_start() {
  # train.init_from with data.standardize: from a run of the same standardization the weights go over as they are
  # (full-batch SGD: 100 + 100 epochs = 200, bit for bit); from a run trained under another standardization (or
  # none) they are re-expressed so that the warm start begins from the same V(x) in the user's units.
  write_large_units_file "$work/big.h5"
  write_sgd_std() {  # $1 name, $2 standardize, $3 epochs, $4 lr, $5 extra train keys
    cat >"$work/$1.yaml" <<YAML
name: w
data: {target: file, path: big.h5, standardize: $2}
model: {widths: [12, 12], activation: tanh, dtype: float64}
optimizer: {name: sgd, lr: $4}
train: {epochs: $3, seed: 4${5:-}}
YAML
    run "$GRADFIT_BIN" --out "$work/$1" "$work/$1.yaml"
    expect_rc 0
  }
  write_sgd_std long true 200 0.05
  write_sgd_std half true 100 0.05
  write_sgd_std more true 100 0.05 ", init_from: half/results.h5"
  "$PYTHON" - "$work" <<'PY' || fail "cannot write other.h5"
import sys, h5py
with h5py.File(sys.argv[1] + "/big.h5") as d, h5py.File(sys.argv[1] + "/other.h5", "w") as o:
    o["x"], o["grad"], o["value"] = 0.5 * d["x"][:] + 100, 3 * d["grad"][:], 2 * d["value"][:] + 5e6
PY
  sed 's/big.h5/other.h5/' "$work/half.yaml" >"$work/other.yaml"
  run "$GRADFIT_BIN" --out "$work/other" "$work/other.yaml"
  expect_rc 0
  write_sgd_std moved true 1 1e-300 ", init_from: other/results.h5"
  for r in other moved; do
    run "$GRADFIT_BIN" eval "$work/$r/results.h5" "$work/big.h5" --out "$work/p$r.h5"
    expect_rc 0
  done
  "$PYTHON" - "$work" <<'PY' || fail "warm start with standardization"
import sys, h5py, numpy as np
w = sys.argv[1]
long, more = (h5py.File(f"{w}/{r}/results.h5")["runs/w"] for r in ("long", "more"))
for p in long["model"]:
    assert np.array_equal(long["model"][p][:], more["model"][p][:]), p
assert np.array_equal(long["train_loss"][100:], more["train_loss"][:]), "histories differ"
print("standardized: 200 epochs = 100 + 100 from init_from, weights and histories identical")
with h5py.File(w + "/pother.h5") as a, h5py.File(w + "/pmoved.h5") as b:
    dv = np.abs(a["value"][:] - b["value"][:]).max() / np.abs(a["value"][:]).max()
    dg = np.abs(a["grad"][:] - b["grad"][:]).max() / np.abs(a["grad"][:]).max()
print(f"a run re-expressed under another standardization (1 step of lr 1e-300): V {dv:.3e}, dV/dx {dg:.3e} apart")
assert dv <= 1e-12 and dg <= 1e-12
PY
}

case_weights_match_pytorch() {
  # Per-sample weights from the data file's `weight` dataset, float64 full batch, 150 epochs: on 1 and 3 ranks, mse
  # and huber, both engines and an ensemble, each run's train_loss, rel_grad_error and final weights equal PyTorch's
  # weighted mean (tests/train/pytorch_reference.py) to 1e-9 relative, and the rank counts agree to 1e-10; with
  # mini-batches, validation and a value term 1 and 3 ranks agree too; a negative weight is one clear error.
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
rng = np.random.default_rng(8)
x = rng.uniform(-2, 2, (200, 2))
grad = 2 * x @ np.array([[2, 0.5], [0.5, 1]]) + np.sin(3 * x)
grad[rng.random(200) < 0.1] += rng.normal(0, 20, (2,))
w = rng.uniform(0, 3, 200)
w[rng.random(200) < 0.1] = 0  # rows that do not count
with h5py.File(sys.argv[1] + "/data.h5", "w") as f:
    f["x"], f["grad"], f["weight"], f["value"] = x, grad, w, (x * x).sum(1)
w[5] = -1
with h5py.File(sys.argv[1] + "/bad.h5", "w") as f:
    f["x"], f["grad"], f["weight"], f["value"] = x, grad, w, (x * x).sum(1)
PY
  cat >"$work/w.yaml" <<YAML
name: weighted
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
optimizer: {lr: 0.02}
train: {epochs: 150, seed: 3, huber_delta: 0.5}
sweep:
  zip:
    train.loss: [mse, huber, huber, huber, mse]
    train.seed: [3, 3, 4, 3, 3]
    train.engine: [analytic, analytic, analytic, autograd, autograd]
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/w.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/r$n/results.h5" "$work/data.h5" --tol 1e-9 ||
      fail "-n $n differs from PyTorch"
  done
  cat >"$work/m.yaml" <<YAML
name: wm
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: tanh, dtype: float64}
optimizer: {lr: 0.01}
train: {epochs: 40, seed: 3, loss: huber, batch_size: 32, val_fraction: 0.2, value_weight: 0.1}
YAML
  for n in 1 3; do run mpi $n "$GRADFIT_BIN" --out "$work/m$n" "$work/m.yaml"; expect_rc 0; done
  "$PYTHON" - "$work" <<'PY' || fail "-n 1 and -n 3 differ"
import sys, h5py, numpy as np
w = sys.argv[1]
worst = 0.0
for r in ("r", "m"):
    a, b = h5py.File(f"{w}/{r}1/results.h5", "r"), h5py.File(f"{w}/{r}3/results.h5", "r")
    for name in a["runs"]:
        ga, gb = a["runs"][name], b["runs"][name]
        for k in ["train_loss", "rel_grad_error", "val_loss", "grad_norm"]:
            if np.isnan(ga[k][:]).all():
                continue
            worst = max(worst, float((np.abs(ga[k][:] - gb[k][:]) / np.abs(ga[k][:])).max()))
        for p in ga["model"]:
            x, y = ga["model"][p][:], gb["model"][p][:]
            worst = max(worst, float(np.abs(x - y).max() / np.abs(x).max()))
        for k in ["final_loss", "final_rel_grad_error"]:
            worst = max(worst, abs(ga.attrs[k] - gb.attrs[k]) / abs(ga.attrs[k]))
print(f"-n 1 vs -n 3 (full batch sweep; mini-batches with validation and values): largest relative difference {worst:.2e}")
assert worst <= 1e-10
ens = h5py.File(f"{w}/r1/results.h5", "r")["runs"]
assert max(int(g.attrs["ensemble"]) for g in ens.values()) > 1, "no ensemble"
assert all(int(g.attrs["weighted"]) == 1 for g in ens.values())
PY
  # With data.standardize too: the final metrics (user units) are the weighted ones of eval's predictions.
  sed 's/path: data.h5}/path: data.h5, standardize: true}/; s/val_fraction: 0.2, //' "$work/m.yaml" >"$work/s.yaml"
  run mpi 3 "$GRADFIT_BIN" --out "$work/s" "$work/s.yaml"
  expect_rc 0
  run mpi 2 "$GRADFIT_BIN" eval "$work/s/results.h5" "$work/data.h5" --out "$work/ps.h5"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "standardized weighted final metrics"
import sys, h5py, numpy as np
w = sys.argv[1]
g = h5py.File(w + "/s/results.h5")["runs/wm"]
with h5py.File(w + "/data.h5") as d, h5py.File(w + "/ps.h5") as p:
    S, wt, pg = d["grad"][:], d["weight"][:], p["grad"][:]
rel = np.sqrt((wt[:, None] * (pg - S) ** 2).sum() / (wt[:, None] * S ** 2).sum())
print(f"standardized, weighted: final_rel_grad_error {g.attrs['final_rel_grad_error']:.9e}, from eval's predictions {rel:.9e}")
assert abs(rel - g.attrs["final_rel_grad_error"]) <= 1e-10 * rel
PY
  sed 's/data.h5/bad.h5/' "$work/m.yaml" >"$work/bad.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" "$work/bad.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*bad\.h5: dataset 'weight' has a negative number, NaN or Inf in row 5$"
}

case_molecular_bad_input() {
  # Bad molecular data, each one error line naming the file, row and atoms, and nothing lost: a data.test_path
  # with two atoms at one place or a NaN is refused before anything is trained or written (not NaN test metrics
  # after training); coordinates beyond 1e6 Å and an atomic number that is no element are refused in the training
  # data; eval refuses coincident atoms as training does; eval and export never write over a file they read (by
  # path, through a symbolic link, or a hard link), which stays byte for byte as it was.
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
w = sys.argv[1]
rng = np.random.default_rng(4)
def write(name, x, numbers=(1, 8, 1), nan_row=None):
    grad = np.sin(x)
    if nan_row is not None:
        grad[nan_row, 4] = np.nan
    with h5py.File(f"{w}/{name}", "w") as f:
        f["x"], f["grad"] = x, grad
        f.attrs["numbers"] = np.array(numbers)
frames = lambda n: (np.array([0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0]) + rng.normal(0, 0.05, (n, 9)))
write("train.h5", frames(64))
test = frames(40)
write("test.h5", test)
test[7, 6:9] = test[7, 0:3]  # atom 2 on atom 0
write("test_coincident.h5", test)
write("test_nan.h5", frames(40), nan_row=5)
far = frames(64)
far[11, 4] = 1e300
write("far.h5", far)
write("dummy.h5", frames(64), numbers=(0, 8, 1))
PY
  cat >"$work/s.yaml" <<YAML
name: water
data: {target: file, path: train.h5, test_path: test.h5}
model: {widths: [8], activation: softplus, dtype: float64, features: inverse_distances}
train: {epochs: 3}
YAML
  one_error() {  # one_error PATTERN: exit code 1, one error line matching PATTERN, no output folder
    expect_rc 1
    [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected exactly one error line"
    expect_in err "$1"
    [ ! -e "$work/bad" ] || fail "an output folder was written"
  }
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" --set data.test_path=test_coincident.h5 "$work/s.yaml"
  one_error "^gradfit_dist: error: .*s\.yaml: key 'data\.test_path': .*test_coincident\.h5: row 7: atoms 0 and 2 are at the same place \(model\.features inverse_distances needs distinct atoms\) \(run water\)$"
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" --set data.test_path=test_nan.h5 "$work/s.yaml"
  one_error "^gradfit_dist: error: .*s\.yaml: key 'data\.test_path': .*test_nan\.h5: dataset 'grad' has NaN or Inf in row 5 \(run water\)$"
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" --set data.path=dummy.h5 "$work/s.yaml"
  one_error "^gradfit_dist: error: .*dummy\.h5: attribute 'numbers': atom 0 has atomic number 0, not an element \(1 to 118\)$"
  run mpi 2 "$GRADFIT_BIN" --out "$work/far" --set data.path=far.h5 "$work/s.yaml"
  expect_rc 1
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected exactly one error line"
  expect_in err "^gradfit_dist: error: run water: .*far\.h5: dataset 'x' row 11: a coordinate of 1e\+300 Å, beyond ±1e6 Å, which no physical structure reaches"
  # A good test file trains; eval then refuses coincident atoms, and an --out that is an input.
  run mpi 2 "$GRADFIT_BIN" --out "$work/r" "$work/s.yaml"
  expect_rc 0
  run mpi 2 "$GRADFIT_BIN" eval "$work/r/results.h5" "$work/test_coincident.h5"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*test_coincident\.h5: row 7: atoms 0 and 2 are at the same place"
  sums() { cksum "$work/train.h5" "$work/r/results.h5"; }
  before=$(sums)
  ln -s train.h5 "$work/link.h5"
  ln "$work/train.h5" "$work/hard.h5"
  ln -s r/results.h5 "$work/results_link.h5"
  for out in "$work/train.h5" "$work/link.h5" "$work/hard.h5" "$work/./r/../train.h5"; do
    run mpi 2 "$GRADFIT_BIN" eval "$work/r/results.h5" "$work/train.h5" --out "$out"
    expect_rc 1
    [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected exactly one error line"
    expect_in err "^gradfit_dist: error: --out .* is the data file .*train\.h5: eval never writes over a file it reads; choose another name$"
  done
  for out in "$work/r/results.h5" "$work/results_link.h5"; do
    run mpi 2 "$GRADFIT_BIN" eval "$work/r/results.h5" "$work/train.h5" --out "$out"
    expect_rc 1
    expect_in err "^gradfit_dist: error: --out .* is the results file .*results\.h5: eval never writes"
    run "$GRADFIT_BIN" export "$work/r/results.h5#water" --out "$out"
    expect_rc 1
    expect_in err "^gradfit_dist: error: --out .* is the results file .*results\.h5: export never writes over a file it reads; choose another name$"
  done
  [ "$(sums)" = "$before" ] || fail "an input changed"
  ls "$work" "$work/r" | grep -q '\.tmp-' && fail "a temporary was left"
}
