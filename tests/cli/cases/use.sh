# cli cases: Using a fitted model: eval, export, warm starts, test metrics, the molecular workflow.
# Each function case_NAME is the ctest test cli.NAME (tests/cli/CMakeLists.txt reads the names here);
# cli_test.sh runs it after lib.sh's helpers, in a fresh $work folder.

case_warm_start() {
  # A 200-epoch full-batch SGD run equals a 100-epoch run continued for 100 epochs with train.init_from, bit for
  # bit (SGD without momentum has no state to lose); the source is part of the run's id and recorded; a source of
  # another architecture is one clear error.
  write_sgd() {  # $1 file, $2 epochs, $3 extra train keys, $4 widths
    cat >"$1" <<YAML
name: sgd
data: {target: gaussian_wells, dim: 2, sampling: uniform, samples: 300, well_width: 1.5}
model: {widths: ${4:-[12, 12]}, activation: tanh, dtype: float64}
optimizer: {name: sgd, lr: 0.05}
train: {epochs: $2, seed: 4${3:-}}
YAML
  }
  write_sgd "$work/long.yaml" 200
  write_sgd "$work/half.yaml" 100
  write_sgd "$work/more.yaml" 100 ", init_from: half/results.h5"
  run mpi 2 "$GRADFIT_BIN" --out "$work/long" "$work/long.yaml"
  expect_rc 0
  run mpi 2 "$GRADFIT_BIN" --out "$work/half" "$work/half.yaml"
  expect_rc 0
  run mpi 2 "$GRADFIT_BIN" --out "$work/more" "$work/more.yaml"
  expect_rc 0
  "$PYTHON" - "$work/long/results.h5" "$work/half/results.h5" "$work/more/results.h5" <<'PY' || fail "warm start"
import sys, h5py, numpy as np
long, half, more = (h5py.File(p, "r")["runs/sgd"] for p in sys.argv[1:])
for p in long["model"]:
    assert np.array_equal(long["model"][p][:], more["model"][p][:]), p
assert np.array_equal(long["train_loss"][100:], more["train_loss"][:]), "histories differ"
assert more.attrs["init_from"].endswith("half/results.h5"), more.attrs["init_from"]
assert half.attrs["init_from"] == "", half.attrs["init_from"]
assert more.attrs["id"] != half.attrs["id"], "init_from is not part of the run's id"
print("200 epochs = 100 + 100 from init_from: weights and histories identical")
PY
  write_sgd "$work/wider.yaml" 10 ", init_from: half/results.h5" "[16, 12]"
  run mpi 2 "$GRADFIT_BIN" --out "$work/wider" "$work/wider.yaml"
  expect_rc 1
  [ "$(grep -c "gradfit_dist: error" "$work/err")" -eq 1 ] || fail "expected one error line"
  expect_in err "^gradfit_dist: error: run sgd: train\.init_from .*half/results\.h5: run sgd is 2-12-12-1, this run 2-16-12-1 \(warm starts need the same architecture\)$"
  [ ! -e "$work/wider/results.h5" ] || fail "a results file was written"
}

case_eval_matches_pytorch() {
  # eval under 1 and 3 ranks writes the same PRED.h5, equal to PyTorch's own evaluation of the saved weights.
  train_for_eval "$work/fit"
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" eval "$work/fit/results.h5" "$work/fit/pts.h5" --run dtype=float64 --out "$work/p$n.h5"
    expect_rc 0
    expect_in out "^relative gradient error"
    expect_in out "V is defined up to a constant"
  done
  "$PYTHON" - "$work" <<'PY' || fail "-n 1 and -n 3 differ"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1] + "/p1.h5") as a, h5py.File(sys.argv[1] + "/p3.h5") as b:
    for k in ("value", "grad"):
        d = np.abs(a[k][:] - b[k][:]).max()
        print(f"eval -n 1 vs -n 3: {k} max abs difference {d:.3e}")
        assert d == 0, k
PY
  check_against_torch "$work/fit/results.h5" dtype=float64 "$work/p3.h5" "$work/fit/pts.h5" 1e-12
  # The metrics printed equal those computed from the predictions.
  "$PYTHON" - "$work" "$(awk '/^relative gradient error/ {print $NF}' "$work/out")" <<'PY' || fail "metrics"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1] + "/p3.h5") as p, h5py.File(sys.argv[1] + "/fit/pts.h5") as d:
    rel = np.linalg.norm(p["grad"][:] - d["grad"][:]) / np.linalg.norm(d["grad"][:])
print(f"printed relative error {sys.argv[2]}, from PRED.h5 {rel:.6e}")
assert abs(float(sys.argv[2]) - rel) <= 1e-6 * rel
PY
  # float32, and a file without grad (predictions only) chosen by id
  run mpi 2 "$GRADFIT_BIN" eval "$work/fit/results.h5#dtype=float32" "$work/fit/nograd.h5" --out "$work/p32.h5"
  expect_rc 0
  expect_in out "predictions only"
  check_against_torch "$work/fit/results.h5" dtype=float32 "$work/p32.h5" "$work/fit/pts.h5" 1e-5
}

case_export_matches_eval() {
  # export's TorchScript module, loaded by torch.jit.load, gives eval's V and dV/dx (also under no_grad).
  train_for_eval "$work/fit"
  run mpi 2 "$GRADFIT_BIN" eval "$work/fit/results.h5" "$work/fit/pts.h5" --run best --out "$work/pred.h5"
  expect_rc 0
  best=$(grep -Eo "run 'dtype=float[0-9]+'" "$work/out" | grep -Eo "float[0-9]+")
  run mpi 2 "$GRADFIT_BIN" export "$work/fit/results.h5" --run best --out "$work/model.pt"
  expect_rc 0
  expect_in out "wrote .*model.pt"
  tol=1e-12; [ "$best" = float64 ] || tol=1e-5
  "$PYTHON" - "$work" "$tol" <<'PY' || fail "export differs from eval"
import sys, h5py, numpy as np, torch
m = torch.jit.load(sys.argv[1] + "/model.pt")
with h5py.File(sys.argv[1] + "/fit/pts.h5") as f:
    x = torch.from_numpy(f["x"][:])
with h5py.File(sys.argv[1] + "/pred.h5") as f:
    pv, pg = f["value"][:], f["grad"][:]
with torch.no_grad():
    v, g = m(x).double().numpy(), m.gradient(x).double().numpy()
dv, dg = np.abs(v - pv).max() / np.abs(pv).max(), np.abs(g - pg).max() / np.abs(pg).max()
print(f"export ({m.dtype}) vs eval: value {dv:.3e}, grad {dg:.3e} (tolerance {sys.argv[2]})")
assert v.shape == pv.shape and g.shape == pg.shape and dv <= float(sys.argv[2]) and dg <= float(sys.argv[2])
PY
  # and the float64 run always, to 1e-12
  run "$GRADFIT_BIN" eval "$work/fit/results.h5" "$work/fit/pts.h5" --run dtype=float64 --out "$work/pred64.h5"
  expect_rc 0
  run "$GRADFIT_BIN" export "$work/fit/results.h5#dtype=float64" --out "$work/model64.pt"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "float64 export differs from eval"
import sys, h5py, numpy as np, torch
m = torch.jit.load(sys.argv[1] + "/model64.pt")
with h5py.File(sys.argv[1] + "/fit/pts.h5") as f:
    x = torch.from_numpy(f["x"][:])
with h5py.File(sys.argv[1] + "/pred64.h5") as f:
    pv, pg = f["value"][:], f["grad"][:]
v, g = m(x).detach().numpy(), m.gradient(x).numpy()
dv, dg = np.abs(v - pv).max() / np.abs(pv).max(), np.abs(g - pg).max() / np.abs(pg).max()
print(f"export (float64) vs eval: value {dv:.3e}, grad {dg:.3e}")
assert dv <= 1e-12 and dg <= 1e-12
PY
}

case_eval_errors() {
  # Each bad input: one error line naming it, exit code 1, and no PRED.h5 (nor a temporary) left behind.
  train_for_eval "$work/fit"
  "$PYTHON" - "$work/n3.h5" <<'PY' || fail "cannot write n3.h5"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["x"] = np.zeros((10, 3))
PY
  mkdir "$work/outdir"
  check_eval_error() {
    label=$1; shift
    timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" eval "$@" --out "$work/outdir/pred.h5"
    expect_one_error "$pattern"
    [ -z "$(ls "$work/outdir")" ] || fail "$label: left $(ls "$work/outdir")"
  }
  pattern="no run named or with id 'nope' \\(runs: dtype=float32, dtype=float64; choose with --run"
  check_eval_error unknown_run "$work/fit/results.h5" "$work/fit/pts.h5" --run nope
  pattern="holds 2 runs; say which"
  check_eval_error no_run "$work/fit/results.h5" "$work/fit/pts.h5"
  pattern="n3.h5: dataset 'x' has n = 3 columns, but run 'dtype=float64'.* takes n = 2 inputs"
  check_eval_error wrong_n "$work/fit/results.h5" "$work/n3.h5" --run dtype=float64
  pattern="absent.h5: no such file"
  check_eval_error missing_results "$work/absent.h5" "$work/fit/pts.h5"
  pattern="cannot open HDF5 file '.*absent_data.h5'"
  check_eval_error missing_data "$work/fit/results.h5" "$work/absent_data.h5" --run dtype=float64
  timed_run "$GRADFIT_BIN" export "$work/fit/results.h5" --run nope --out "$work/outdir/model.pt"
  expect_one_error "no run named or with id 'nope'"
  [ -z "$(ls "$work/outdir")" ] || fail "export left $(ls "$work/outdir")"
}

case_test_metrics() {
  # data.test_path: every ended run is evaluated on the test file with its saved weights. Its test metrics (run
  # attributes, /summary, the leaderboard) equal `eval` on the same file (computed here from eval's PRED.h5); a
  # sweep killed (SIGKILL) after a run ended and resumed ends with the uninterrupted sweep's, the run finished before
  # the kill in the leaderboard with its own; pruned runs get them too;
  # a test file of another n, or none, is one error line before anything is written.
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
def write(path, rows, seed, dim=6):  # two "atoms": V = sum sin(x) + |x|^2 / 4
    x = np.random.default_rng(seed).uniform(-2, 2, (rows, dim))
    with h5py.File(path, "w") as f:
        f["x"], f["grad"], f["value"] = x, np.cos(x) + x / 2, np.sin(x).sum(1) + (x * x).sum(1) / 4
        if dim == 6:
            f.attrs["numbers"] = np.array([1, 8])
write(sys.argv[1] + "/train.h5", 600, 1)
write(sys.argv[1] + "/test.h5", 300, 2)
write(sys.argv[1] + "/test3.h5", 300, 3, dim=3)
PY
  cat >"$work/s.yaml" <<YAML
name: tested
ranks_per_run: 1
ensemble_size: 1
data: {target: file, path: train.h5, test_path: test.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
train: {epochs: 150, batch_size: 100, val_fraction: 0.2}
checkpoint: {every_epochs: 1, every_seconds: 0}
sweep:
  grid: {optimizer.lr: [0.01, 0.003, 0.001, 0.03]}
YAML
  mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml" </dev/null >"$work/out" 2>&1 &
  job=$!
  wait_for_file "$work/r/runs" '*.h5' || fail "no run finished"
  pkill -KILL -f "^$GRADFIT_BIN .*$work/r " || fail "no rank to kill"
  wait "$job"
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml"
  expect_rc 0
  expect_in out "continuing in .*: [1-3] runs? already finished"
  expect_in out "^rank +id +status +best_val_loss +rel_error +test_rel_err +loss +name$"
  cp "$work/out" "$work/resumed.out"
  mpi 2 "$GRADFIT_BIN" --out "$work/reference" "$work/s.yaml" </dev/null >"$work/ref.out" 2>&1 ||
    fail "the uninterrupted sweep failed"
  for lr in 0.01 0.003 0.001 0.03; do
    run "$GRADFIT_BIN" eval "$work/r/results.h5" "$work/test.h5" --run "lr=$lr" --out "$work/p$lr.h5"
    expect_rc 0
  done
  cp "$work/out" "$work/eval.out"
  "$PYTHON" - "$work" <<'PY' || fail "test metrics differ from eval's"
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(f"{w}/test.h5") as d:
    S, value = d["grad"][:], d["value"][:]
r, ref = h5py.File(f"{w}/r/results.h5"), h5py.File(f"{w}/reference/results.h5")
summary = {row["name"].decode(): row for row in r["summary"][:]}
keys = ("test_rel_grad_error", "test_grad_mae", "test_grad_rmse", "test_value_mae")
for lr in ("0.01", "0.003", "0.001", "0.03"):
    g = r["runs"][f"lr={lr}"]
    with h5py.File(f"{w}/p{lr}.h5") as p:
        e, ev = p["grad"][:] - S, p["value"][:] - value
    eval_metrics = {"test_rel_grad_error": np.linalg.norm(e) / np.linalg.norm(S), "test_grad_mae": np.abs(e).mean(),
                    "test_grad_rmse": np.sqrt((e * e).mean()), "test_value_mae": np.abs(ev - ev.mean()).mean()}
    for k in keys:
        mine = g.attrs[k]
        assert abs(mine - eval_metrics[k]) <= 1e-12 * eval_metrics[k], (lr, k, mine, eval_metrics[k])
        assert summary[f"lr={lr}"][k] == mine, (lr, k, "summary")
        assert ref["runs"][f"lr={lr}"].attrs[k] == mine, (lr, k, "differs from the uninterrupted sweep")
    assert g.attrs["test_rows"] == 300 and g.attrs["test_data"].endswith("/test.h5")
    assert list(g.attrs["numbers"]) == [1, 8], g.attrs["numbers"]
    print(f"lr={lr}: " + ", ".join(f"{k} {g.attrs[k]:.9e}" for k in keys) + " = eval's and the uninterrupted sweep's")
    rows = [l.split() for l in open(f"{w}/resumed.out") if l.split()[:1] != [] and l.split()[-1] == f"lr={lr}"]
    assert any(row[0].isdigit() and row[5] == f"{g.attrs['test_rel_grad_error']:.4e}" for row in rows), rows
PY
  # Pruned runs are evaluated too.
  write_prune_sweep "$work/prune.yaml" "{method: asha, min_epochs: 4}"
  run mpi 2 "$GRADFIT_BIN" --out "$work/pr" --set data.test_path=test3.h5 "$work/prune.yaml"
  expect_rc 0
  "$PYTHON" - "$work/pr/results.h5" <<'PY' || fail "a run without test metrics"
import sys, h5py, numpy as np
runs = h5py.File(sys.argv[1])["runs"]
statuses = sorted(g.attrs["status"] for g in runs.values())
assert "pruned" in statuses and "done" in statuses, statuses
for name, g in runs.items():
    assert np.isfinite(g.attrs["test_rel_grad_error"]) and g.attrs["test_rows"] == 300, name
print(f"{len(runs)} runs ({statuses.count('pruned')} pruned): each has its test metrics")
PY
  # A test file of another n, and a missing one: one line naming the key, nothing written.
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" --set data.test_path=test3.h5 "$work/s.yaml"
  expect_rc 1
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected one error line"
  expect_in err "^gradfit_dist: error: .*s\.yaml: key 'data\.test_path': .*test3\.h5 has n = 3 columns, but the training data .*train\.h5 has n = 6 \(run lr=0\.01\)$"
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" --set data.test_path=absent.h5 "$work/s.yaml"
  expect_rc 1
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected one error line"
  expect_in err "^gradfit_dist: error: .*s\.yaml: key 'data\.test_path': .*absent\.h5"
  [ ! -e "$work/bad" ] || fail "an output folder was written"
}

case_molecule_workflow() {
  # The molecular example shortened (docs/molecules.md): MD frames labelled by a physics code (ASE's EMT, a Cu6
  # cluster at 500 K) in extended XYZ -> scripts/ase_import.py (x and grad exactly the positions and -forces) -> a
  # sweep on inverse distances with data.test_path -> export --run best -> GradfitCalculator, whose energies and
  # forces equal eval's predictions to 1e-10 (float64) -> 100 steps of NVE in ASE (experiments/molecule/md.py:
  # total energy within 5 meV/atom, bonds within their training range) -> the figures; and a model/atoms mismatch
  # is one line.
  "$PYTHON" - "$work/md.extxyz" <<'PY' || fail "cannot make the EMT frames"
import sys, numpy as np, ase.io
from ase import Atoms, units
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
a = 2.55 / np.sqrt(2)  # an octahedron of Cu, nearest neighbours 2.55 Å apart
atoms = Atoms("Cu6", positions=[(a, 0, 0), (-a, 0, 0), (0, a, 0), (0, -a, 0), (0, 0, a), (0, 0, -a)], pbc=False)
atoms.calc = EMT()
MaxwellBoltzmannDistribution(atoms, temperature_K=500, rng=np.random.default_rng(0))
md = Langevin(atoms, 2 * units.fs, temperature_K=500, friction=0.02, rng=np.random.default_rng(1))
frames = []
for _ in range(700):
    md.run(2)
    frame = atoms.copy()
    frame.calc = SinglePointCalculator(frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
    frames.append(frame)
ase.io.write(sys.argv[1], frames, format="extxyz")
PY
  run "$PYTHON" scripts/ase_import.py "$work/md.extxyz" --index :600 --out "$work/train.h5"
  expect_rc 0
  expect_in out "^wrote .*train\.h5: 600 frames of 6 atoms \(Cu6\)"
  run "$PYTHON" scripts/ase_import.py "$work/md.extxyz" --index 600: --out "$work/test.h5"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "the imported data are not the source's"
import sys, h5py, numpy as np, ase.io
w = sys.argv[1]
frames = ase.io.read(f"{w}/md.extxyz", ":")
with h5py.File(f"{w}/train.h5") as t, h5py.File(f"{w}/test.h5") as h:
    x, grad = np.concatenate([t["x"][:], h["x"][:]]), np.concatenate([t["grad"][:], h["grad"][:]])
    value = np.concatenate([t["value"][:], h["value"][:]])
    assert list(t.attrs["numbers"]) == [29] * 6
assert np.array_equal(x, np.array([f.get_positions().ravel() for f in frames]))
assert np.array_equal(grad, -np.array([f.get_forces().ravel() for f in frames]))
assert np.array_equal(value, np.array([f.get_potential_energy() for f in frames]))
print(f"imported {len(x)} frames: x, grad, value equal the source's positions, -forces and energies exactly")
PY
  cat >"$work/s.yaml" <<YAML
name: cu6
data: {target: file, path: train.h5, test_path: test.h5, standardize: true}
model: {widths: [32, 32], activation: silu, dtype: float64, features: inverse_distances}
optimizer: {name: adam, lr: 0.003, schedule: cosine}
train: {epochs: 150, batch_size: 64, val_fraction: 0.1}
sweep:
  grid: {optimizer.lr: [0.003, 0.01]}
YAML
  run mpi 2 "$GRADFIT_BIN" --out "$work/r" "$work/s.yaml"
  expect_rc 0
  run "$GRADFIT_BIN" export "$work/r/results.h5" --run best --out "$work/cu6.pt"
  expect_rc 0
  run mpi 2 "$GRADFIT_BIN" eval "$work/r/results.h5" "$work/test.h5" --run best --out "$work/pred.h5"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "the calculator differs from eval"
import sys, h5py, numpy as np
sys.path.insert(0, "scripts")
from ase import Atoms
from ase_calculator import GradfitCalculator
w = sys.argv[1]
calc = GradfitCalculator(f"{w}/cu6.pt")
with h5py.File(f"{w}/test.h5") as d, h5py.File(f"{w}/pred.h5") as p:
    x, value, grad = d["x"][:], p["value"][:], p["grad"][:]
energies, forces = calc.evaluate(x)
de = np.abs(energies - value).max() / np.abs(value).max()
df = np.abs(forces.reshape(grad.shape) + grad).max() / np.abs(grad).max()
atoms = Atoms("Cu6", positions=x[3].reshape(6, 3))
atoms.calc = calc
one = np.abs(atoms.get_forces().ravel() + grad[3]).max() / np.abs(grad).max()
print(f"calculator vs eval on {len(x)} test frames: energies {de:.2e}, forces {df:.2e}; one frame via ASE {one:.2e}")
assert de <= 1e-10 and df <= 1e-10 and one <= 1e-10
try:
    bad = Atoms("Cu5Ag", positions=x[3].reshape(6, 3))
    bad.calc = calc
    bad.get_forces()
    raise AssertionError("other atoms were accepted")
except ValueError as error:
    message = str(error)
print(message)
assert "\n" not in message and "6 atoms (Cu6: 29 29 29 29 29 29)" in message and "(AgCu5: 29 29 29 29 29 47)" in message
PY
  run "$PYTHON" experiments/molecule/md.py "$work/cu6.pt" "$work/train.h5" --steps 100 --dt 0.5 --out "$work/md"
  expect_rc 0
  expect_in out "^NVE 50 fs \(100 steps of 0\.5 fs\) of Cu6 from 300 K: total energy within [0-9.]+ meV/atom"
  expect_in out "^bonds: ([0-9]+) of \1 stayed within their training range$"
  run "$PYTHON" experiments/molecule/plot.py "$work/cu6.pt" "$work/test.h5" "$work/md/nve.csv" --out "$work/fig"
  expect_rc 0
  [ -s "$work/fig/forces.png" ] && [ -s "$work/fig/nve.png" ] || fail "no figures"
}
