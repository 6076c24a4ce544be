# cli cases: model.features atom_centered (per-element networks on each atom's ANI descriptor), end to end.
# Each function case_NAME is the ctest test cli.NAME (tests/cli/CMakeLists.txt reads the names here);
# cli_test.sh runs it after lib.sh's helpers, in a fresh $work folder.

# $work/mol.h5: 100 frames of a 5-atom molecule (C, O, H, H, H; attribute numbers) about a shape ~3.5 Å wide, so
# that some pairs fall beyond the small cutoffs of $work/ac.yaml; V = a sum of Morse-like pair terms plus the
# atoms' energies (-38 C, -75 O, -0.5 H), its values, and its gradient.
write_atom_centered_data() {
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
rng = np.random.default_rng(8)
base = np.array([[0, 0, 0], [1.4, 0, 0], [-0.6, 0.9, 0.1], [-0.5, -0.9, 0.3], [2.9, 0.8, -0.4]])
x = base[None] + 0.12 * rng.normal(size=(100, 5, 3))
grad = np.zeros_like(x)
value = np.full(100, -38 - 75 - 3 * 0.5)
for i in range(5):
    for j in range(i + 1, 5):
        r = x[:, i] - x[:, j]
        d = np.linalg.norm(r, axis=1, keepdims=True)
        d0 = np.linalg.norm(base[i] - base[j])
        e = np.exp(-(d - d0))
        value += (1 - e[:, 0]) ** 2
        dv = 2 * (1 - e) * e  # d/dd of (1 - exp(-(d - d0)))^2
        grad[:, i] += dv * r / d
        grad[:, j] -= dv * r / d
with h5py.File(sys.argv[1] + "/mol.h5", "w") as f:
    f["x"], f["grad"], f["value"] = x.reshape(100, 15), grad.reshape(100, 15), value
    f.attrs["numbers"] = np.array([6, 8, 1, 1, 1])
PY
  cat >"$work/ac.yaml" <<YAML
name: ac
data: {target: file, path: mol.h5}
model:
  widths: [8, 8]
  activation: softplus
  dtype: float64
  features: atom_centered
  radial_cutoff: 3.0
  angular_cutoff: 2.4
  radial_eta: 4
  angular_eta: 3
  zeta: 4
  radial_divisions: 4
  angular_divisions: 2
  angle_sections: 3
train: {epochs: 12, seed: 2, engine: autograd}
sweep:
  grid: {optimizer.lr: [0.01, 0.003], train.value_weight: [0, 0.2]}
YAML
}

# ac.yaml and its variants: ac_mb (gradfit_dist's mini-batches), and ac_an, ac_mb_an (the analytic engine). ac_mb
# and ac_an give H's and O's networks widths of their own (model.element_widths).
write_atom_centered_sweeps() {
  write_atom_centered_data
  sed -e 's/^name: ac/name: ac_mb/' -e 's/seed: 2, engine/seed: 2, batch_size: 32, engine/' \
    -e 's/epochs: 12/epochs: 4/' "$work/ac.yaml" >"$work/ac_mb.yaml"
  for sweep in ac ac_mb; do
    sed -e "s/^name: $sweep/name: ${sweep}_an/" -e 's/engine: autograd/engine: analytic/' "$work/$sweep.yaml" \
      >"$work/${sweep}_an.yaml"
  done
  for sweep in ac_mb ac_an; do
    sed -i 's/^  angle_sections: 3$/  angle_sections: 3\n  element_widths: {H: [6], O: [8, 4, 4]}/' "$work/$sweep.yaml"
  done
}

# atom_centered_against_pytorch SWEEP...: each sweep on 1 rank equal to PyTorch's training to 1e-9, and on 3 ranks
# equal to 1 rank to 1e-10 (so to PyTorch within 1e-9 + 1e-10; the reference replays a run in seconds of Python).
# Each sweep's runs train with and without energies (train.value_weight, per atom, less the element energies that
# the reference fits by numpy's least squares and compares with the runs').
atom_centered_against_pytorch() {
  for sweep in "$@"; do
    for n in 1 3; do
      run mpi "$n" "$GRADFIT_BIN" --out "$work/$sweep$n" "$work/$sweep.yaml"
      expect_rc 0
    done
    "$PYTHON" tests/train/pytorch_reference.py "$work/${sweep}1/results.h5" "$work/mol.h5" --tol 1e-9 ||
      fail "$sweep: -n 1 differs from PyTorch"
    "$PYTHON" tests/cli/compare_rank_counts.py "$work/${sweep}1/results.h5" "$work/${sweep}3/results.h5" \
      --tol 1e-10 || fail "$sweep: -n 1 and -n 3 differ"
  done
}

case_atom_centered_analytic_matches_pytorch() {
  # model.features atom_centered, float64, Adam, on the analytic engine (J from the descriptor's structure, one
  # network per element): full batch (runs of two rates as one job's ensemble) and in gradfit_dist's mini-batches,
  # with and without energies, each run's histories and final weights on 1 rank equal PyTorch's training of the same
  # per-element networks on its own implementation of the descriptor (tests/train/atom_centered_reference.py) to
  # 1e-9, and 3 ranks equal 1 rank to 1e-10.
  write_atom_centered_sweeps
  atom_centered_against_pytorch ac_an ac_mb_an
}

case_atom_centered_matches_pytorch() {
  # The same on the autograd engine (the reference's double backward through the descriptor's operations). eval's
  # energies do not change, and its forces turn and permute with the atoms, when the molecule turns, moves and its
  # H atoms trade places (1e-12); --dry-run shows the elements and the descriptor's width.
  write_atom_centered_sweeps
  atom_centered_against_pytorch ac ac_mb
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the moved points"
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(w + "/mol.h5") as f:
    x = f["x"][:].reshape(-1, 5, 3)
c, s = np.cos(0.9), np.sin(0.9)
rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
order = [0, 1, 3, 4, 2]  # the H atoms 2, 3, 4 as 3, 4, 2
with h5py.File(w + "/moved.h5", "w") as f:
    f["x"] = (x @ rotation.T + np.array([2.0, -1.0, 0.5]))[:, order].reshape(-1, 15)
    f.attrs["numbers"] = np.array([6, 8, 1, 1, 1])
np.save(w + "/rotation.npy", rotation)
PY
  for points in mol moved; do
    run mpi 2 "$GRADFIT_BIN" eval "$work/ac3/results.h5" "$work/$points.h5" --run best --out "$work/p_$points.h5"
    expect_rc 0
  done
  "$PYTHON" - "$work" <<'PY' || fail "invariance"
import sys, h5py, numpy as np
w = sys.argv[1]
rotation = np.load(w + "/rotation.npy")
with h5py.File(w + "/p_mol.h5") as a, h5py.File(w + "/p_moved.h5") as b:
    v, g, v_moved, g_moved = a["value"][:], a["grad"][:], b["value"][:], b["grad"][:]
back = np.empty_like(g_moved.reshape(-1, 5, 3))
back[:, [0, 1, 3, 4, 2]] = g_moved.reshape(-1, 5, 3) @ rotation  # turned back, atoms in their first order
dv = np.abs(v_moved - v).max() / np.abs(v).max()
dg = np.linalg.norm(back.reshape(-1, 15) - g) / np.linalg.norm(g)
print(f"turned, moved and permuted: V changes by {dv:.2e}, dV/dx by {dg:.2e} (relative)")
assert dv <= 1e-12 and dg <= 1e-12
PY
  run "$GRADFIT_BIN" --dry-run "$work/ac.yaml"
  expect_rc 0
  expect_in out "^1 +[0-9a-f]{12} +atom_centered\(15\)-H,C,O:48-8-8-1 +softplus "
  run "$GRADFIT_BIN" --dry-run "$work/ac_mb.yaml"
  expect_rc 0
  expect_in out "^1 +[0-9a-f]{12} +atom_centered\(15\)-H:48-6-1,C:48-8-8-1,O:48-8-4-4-1 +softplus "
}

case_atom_centered_errors() {
  # What atom_centered cannot take yet, or at all, is one line naming the key or file, exit code 1, nothing written:
  # a data file without atomic numbers, data.standardize, a descriptor key on another kind, a bad value.
  write_atom_centered_data
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1] + "/mol.h5") as f, h5py.File(sys.argv[1] + "/bare.h5", "w") as g:
    g["x"], g["grad"] = f["x"][:], f["grad"][:]
with h5py.File(sys.argv[1] + "/frames.h5", "w") as g:  # ase_import.py's frames layout: two frames of 2 and 3 atoms
    g["positions"], g["grad"] = np.random.default_rng(1).normal(size=(5, 3)), np.zeros((5, 3))
    g["numbers"], g["atoms"] = np.array([1, 1, 6, 1, 1]), np.array([2, 3])
    g["cell"], g["pbc"] = np.zeros((2, 9)), np.zeros((2, 3), dtype=np.int8)
    g.attrs["layout"] = "frames"
PY
  expect_config_error() {  # expect_config_error LABEL ERE SED-SCRIPT: ac.yaml changed by SED-SCRIPT fails so
    sed -e "$3" "$work/ac.yaml" >"$work/$1.yaml"
    run mpi 2 "$GRADFIT_BIN" --out "$work/$1" "$work/$1.yaml"
    expect_rc 1
    [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "$1: expected exactly one error line"
    expect_in err "$2"
    [ ! -e "$work/$1" ] || fail "$1: the output folder was made"
  }
  expect_config_error bare "bare.h5 has no attribute 'numbers'" 's/path: mol.h5/path: bare.h5/'
  expect_config_error frames "key 'train.engine': .*frames.h5 holds frames of any atoms .*analytic engine only" \
    's/path: mol.h5/path: frames.h5/'
  expect_config_error standardize "key 'data.standardize': is not built yet for model.features atom_centered" \
    's/path: mol.h5}/path: mol.h5, standardize: true}/'
  expect_config_error other_kind "key 'model.radial_cutoff': applies to model.features atom_centered only" \
    's/features: atom_centered/features: inverse_distances/'
  expect_config_error bad_zeta "key 'model.zeta': must be >= 1 \(got 0.5\)" 's/zeta: 4/zeta: 0.5/'
  expect_config_error bad_start "key 'model.angular_start': must be >= 0 and below model.angular_cutoff" \
    's/angle_sections: 3/angle_sections: 3\n  angular_start: 2.5/'
  expect_config_error bad_symbol "key 'model.element_widths': 'Hx' is not an element symbol" \
    's/angle_sections: 3/angle_sections: 3\n  element_widths: {Hx: [4]}/'
  expect_config_error no_such_atoms "key 'model.element_widths': N is not an element of the atoms of .*mol.h5" \
    's/angle_sections: 3/angle_sections: 3\n  element_widths: {N: [4]}/'
  expect_config_error widths_elsewhere "key 'model.element_widths': applies to model.features atom_centered only" \
    's/features: atom_centered/features: inverse_distances\n  element_widths: {H: [4]}/;/radial_cutoff\|angular_cutoff\|_eta\|zeta\|divisions\|angle_sections/d'
}

case_atom_centered_other_molecules() {
  # A run trained with energies on the 5-atom molecule (C, O, H, H, H) predicts a 7-atom one of its elements that it
  # never saw (C, C, O, H x4): eval on 2 ranks, the exported TorchScript module (forward, gradient: energies with the
  # element energies, and dE/dx) and GradfitCalculator agree to 1e-10 (float64). An atom of an element without a
  # network (N) is one line naming the atom in eval (exit code 1, no file written), the module and the calculator.
  write_atom_centered_data
  sed -e 's/epochs: 12/epochs: 3/' -e 's/grid: .*/grid: {train.value_weight: [0.2]}/' "$work/ac.yaml" \
    >"$work/short.yaml"
  run "$GRADFIT_BIN" --out "$work/short" "$work/short.yaml"
  expect_rc 0
  run "$GRADFIT_BIN" export "$work/short/results.h5" --run best --out "$work/ac.pt"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the other molecules"
import sys, h5py, numpy as np
rng = np.random.default_rng(3)
base = np.array([[0, 0, 0], [1.5, 0, 0], [2.2, 1.2, 0], [-0.5, 0.9, 0.2], [-0.5, -0.9, 0.3], [1.9, -0.6, 0.8],
                 [3.1, 1.0, -0.3]])
for name, numbers in (("other", [6, 6, 8, 1, 1, 1, 1]), ("with_n", [6, 6, 7, 1, 1, 1, 1])):
    with h5py.File(f"{sys.argv[1]}/{name}.h5", "w") as f:
        f["x"] = (base[None] + 0.1 * rng.normal(size=(20, 7, 3))).reshape(20, 21)
        f.attrs["numbers"] = np.array(numbers)
PY
  run mpi 2 "$GRADFIT_BIN" eval "$work/short/results.h5" "$work/other.h5" --run best --out "$work/p_other.h5"
  expect_rc 0
  cp "$work/other.h5" "$work/frames.h5"  # marked as ase_import.py's frames layout, without its datasets
  "$PYTHON" -c "import h5py, sys; h5py.File(sys.argv[1], 'a').attrs['layout'] = 'frames'" "$work/frames.h5"
  run mpi 2 "$GRADFIT_BIN" eval "$work/short/results.h5" "$work/frames.h5" --run best --out "$work/p_frames.h5"
  expect_rc 1
  expect_in err "frames.h5: the frames layout needs dataset 'atoms'"
  [ ! -e "$work/p_frames.h5" ] || fail "eval wrote a file for a broken frames file"
  run mpi 2 "$GRADFIT_BIN" eval "$work/short/results.h5" "$work/with_n.h5" --run best --out "$work/p_with_n.h5"
  expect_rc 1
  expect_in err "with_n.h5: atom 2 has atomic number 7 \(N\), an element that run '[^']+' has no network for"
  expect_in err "has no network for \(its elements: H, C, O\)$"
  [ ! -e "$work/p_with_n.h5" ] || fail "eval wrote a file for atoms it cannot evaluate"
  "$PYTHON" - "$work" <<'PY' || fail "the exported module and the calculator differ from eval"
import sys, h5py, numpy as np, torch
sys.path.insert(0, "scripts")
from ase import Atoms
from ase_calculator import GradfitCalculator
w = sys.argv[1]
with h5py.File(w + "/other.h5") as f, h5py.File(w + "/p_other.h5") as p:
    x, numbers, value, grad = f["x"][:], list(f.attrs["numbers"]), p["value"][:], p["grad"][:]
module = torch.jit.load(w + "/ac.pt")
z = torch.tensor(numbers)
energy = module.forward(torch.from_numpy(x), z).detach().numpy()
gradient = module.gradient(torch.from_numpy(x), z).numpy()
dv, dg = np.abs(energy - value).max() / np.abs(value).max(), np.abs(gradient - grad).max() / np.abs(grad).max()
calc = GradfitCalculator(w + "/ac.pt")
atoms = Atoms(numbers=numbers, positions=x[4].reshape(7, 3))
atoms.calc = calc
de = abs(atoms.get_potential_energy() - value[4]) / abs(value[4])
df = np.abs(atoms.get_forces() + grad[4].reshape(7, 3)).max() / np.abs(grad[4]).max()
print(f"7 atoms, never trained on: module vs eval V {dv:.2e}, dV/dx {dg:.2e}; calculator vs eval E {de:.2e}, "
      f"F {df:.2e}; energies {value.min():.3f} .. {value.max():.3f}")
assert max(dv, dg, de, df) <= 1e-10
assert value.max() < -100  # the element energies (about -38 C, -75 O, -0.5 H) are in
try:
    module.forward(torch.from_numpy(x), torch.tensor([6, 6, 7, 1, 1, 1, 1]))
    raise SystemExit("the module took an N atom")
except Exception as error:  # TorchScript's error: its message ends with the module's line
    assert "atom 2 has atomic number 7, an element this model has no network for (its elements: H, C, O)" in str(error)
atoms.numbers = [6, 6, 7, 1, 1, 1, 1]
try:
    atoms.get_potential_energy()
    raise SystemExit("the calculator took an N atom")
except ValueError as error:
    print(error)
    assert "atom 2 is N, an element this model has no network for (its elements: H, C, O)" in str(error)
PY
}

case_atom_centered_resume() {
  # An atom_centered sweep with energies, validation and an ensemble of two runs, stopped by SIGTERM after its first
  # checkpoint (exit code 75) and continued by the same command, equals the uninterrupted sweep bit for bit: the
  # element energies are fitted again, to the same numbers, and the networks' state travels through the checkpoints.
  write_atom_centered_data
  sed -e 's/^name: ac/name: ac_resume\nranks_per_run: 2/' \
    -e 's/epochs: 12, seed: 2, engine: autograd/epochs: 1500, seed: 2, val_fraction: 0.2, value_weight: 0.2/' \
    -e 's/grid: .*/grid: {optimizer.lr: [0.01, 0.003]}/' "$work/ac.yaml" >"$work/s.yaml"
  echo 'checkpoint: {every_epochs: 1, every_seconds: 0}' >>"$work/s.yaml"
  stop_and_resume "$work/s.yaml"
}
