# cli cases: the frames layout (scripts/ase_import.py --layout frames: frames of any atoms, periodic cells), trained
# end to end. Each function case_NAME is the ctest test cli.NAME (tests/cli/CMakeLists.txt reads the names here);
# cli_test.sh runs it after lib.sh's helpers, in a fresh $work folder.

# $work/frames.h5 (tests/train/write_frames.py): 12 frames of 3 to 9 C, H and O atoms: molecules, cubic and
# triclinic cells, slabs and a wire, some shorter than the cutoffs below (an atom sees its own images), with energies
# and gradients of a pair potential summed over the images. $work/fr.yaml: ac.yaml's descriptor on it, on the analytic
# engine, runs of two rates with and without energies (one job's ensemble); fr_mb.yaml: mini-batches of 4 frames,
# with H's and O's networks of widths of their own.
write_frames_sweeps() {
  "$PYTHON" tests/train/write_frames.py "$work/frames.h5" >/dev/null || fail "cannot write the frames"
  cat >"$work/fr.yaml" <<YAML
name: fr
data: {target: file, path: frames.h5}
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
train: {epochs: 8, seed: 2, engine: analytic}
sweep:
  grid: {optimizer.lr: [0.01, 0.003], train.value_weight: [0, 0.2]}
YAML
  sed -e 's/^name: fr/name: fr_mb/' -e 's/seed: 2, engine/seed: 2, batch_size: 4, engine/' \
    -e 's/^  angle_sections: 3$/  angle_sections: 3\n  element_widths: {H: [6], O: [8, 4, 4]}/' \
    "$work/fr.yaml" >"$work/fr_mb.yaml"
}

case_frames_match_pytorch() {
  # Training on frames of mixed sizes and periodic cells (float64, Adam, with and without energies): each run's
  # histories, final weights and element energies on 1 rank equal PyTorch's training on its own descriptor over the
  # images found by brute force (tests/train/frames_reference.py) to 1e-9, full batch and in mini-batches of frames;
  # 3 ranks (shards of whole frames balanced on atoms) equal 1 rank to 1e-10. The reference itself is checked first:
  # invariant to lattice moves, supercells and turns, and equal to the fixed layout's on molecules.
  "$PYTHON" tests/train/frames_reference_check.py || fail "the PyTorch reference on frames"
  write_frames_sweeps
  for sweep in fr fr_mb; do
    for n in 1 3; do
      run mpi "$n" "$GRADFIT_BIN" --out "$work/$sweep$n" "$work/$sweep.yaml"
      expect_rc 0
    done
    "$PYTHON" tests/train/pytorch_reference.py "$work/${sweep}1/results.h5" "$work/frames.h5" --tol 1e-9 ||
      fail "$sweep: -n 1 differs from PyTorch"
    "$PYTHON" tests/cli/compare_rank_counts.py "$work/${sweep}1/results.h5" "$work/${sweep}3/results.h5" \
      --tol 1e-10 || fail "$sweep: -n 1 and -n 3 differ"
  done
  run "$GRADFIT_BIN" --dry-run "$work/fr_mb.yaml"
  expect_rc 0
  expect_in out "^1 +[0-9a-f]{12} +atom_centered\(9\)-H:48-6-1,C:48-8-8-1,O:48-8-4-4-1 +softplus "
  expect_in out "^memory estimate, 1 rank per run, cpu: run .* needs ~[0-9.]+ [kMG]?B of memory per rank \(data shard "
}

case_frames_errors() {
  # What the frames layout cannot take is one line naming the key, or the file and frame, exit code 1, and no
  # output folder: two atoms 0.01 Å apart across a periodic boundary, periodic lattice vectors that span no volume,
  # what does not train on frames yet (the autograd engine, lbfgs), a test file of the fixed layout; and in eval
  # (no file written) and as a test file, a frame with an element the model has no network for.
  write_frames_sweeps
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the broken frames"
import shutil, sys, h5py, numpy as np
w = sys.argv[1]
for name in ("overlap", "flat"):
    shutil.copy(w + "/frames.h5", f"{w}/{name}.h5")
with h5py.File(w + "/overlap.h5", "a") as f:  # frame 5's atom 1 on atom 0's image one lattice vector away
    first = int(f["atoms"][:5].sum())
    p = f["positions"][:]
    p[first + 1] = p[first] + f["cell"][5].reshape(3, 3)[0] + np.array([0.01, 0, 0])
    f["positions"][...] = p
with h5py.File(w + "/flat.h5", "a") as f:  # frame 4's b = 2a
    c = f["cell"][:]
    c[4, 3:6] = 2 * c[4, 0:3]
    f["cell"][...] = c
with h5py.File(w + "/frames.h5") as f, h5py.File(w + "/with_n.h5", "w") as g:  # frame 7's atom 2 a nitrogen
    for name in f:
        g[name] = f[name][:]
    g.attrs.update(f.attrs)
    numbers = g["numbers"][:]
    numbers[int(f["atoms"][:7].sum()) + 2] = 7
    g["numbers"][...] = numbers
with h5py.File(w + "/fixed.h5", "w") as g:  # the fixed layout: 4 frames of one molecule
    g["x"], g["grad"] = np.zeros((4, 9)), np.zeros((4, 9))
    g.attrs["numbers"] = np.array([8, 1, 1])
PY
  expect_frames_error() {  # expect_frames_error LABEL ERE SED-SCRIPT: fr.yaml changed by SED-SCRIPT fails so
    sed -e "$3" "$work/fr.yaml" >"$work/$1.yaml"
    run mpi 3 "$GRADFIT_BIN" --out "$work/$1" "$work/$1.yaml"
    expect_rc 1
    [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "$1: expected exactly one error line"
    expect_in err "$2"
    [ ! -e "$work/$1" ] || fail "$1: the output folder was made"
  }
  expect_frames_error overlap \
    "overlap.h5: frame 5: atoms 0 and 1 \(an image of 1 across the cell\) are 0.01 Å apart, closer than 0.1 Å" \
    's/path: frames.h5/path: overlap.h5/'
  expect_frames_error flat "flat.h5: frame 4: the cell's periodic lattice vectors span no volume" \
    's/path: frames.h5/path: flat.h5/'
  expect_frames_error autograd "key 'train.engine': .*frames.h5 holds frames .*analytic engine only" \
    's/engine: analytic/engine: autograd/'
  expect_frames_error lbfgs "key 'optimizer.name': .*frames.h5 holds frames .*does not train with lbfgs yet" \
    's/^name: fr$/name: fr\noptimizer: {name: lbfgs}/'
  expect_frames_error fixed_test "key 'data.test_path': .*fixed.h5 is not of the frames layout" \
    's/path: frames.h5}/path: frames.h5, test_path: fixed.h5}/'
  expect_frames_error other_element "with_n.h5: frame 7: atom 2 has atomic number 7, not one of the model's elements" \
    's/path: frames.h5}/path: frames.h5, test_path: with_n.h5}/'
  sed -e 's/grid: .*/grid: {optimizer.lr: [0.01]}/' -e 's/epochs: 8/epochs: 2/' "$work/fr.yaml" >"$work/one.yaml"
  run "$GRADFIT_BIN" --out "$work/one" "$work/one.yaml"
  expect_rc 0
  run mpi 3 "$GRADFIT_BIN" eval "$work/one/results.h5" "$work/with_n.h5" --run best --out "$work/p.h5"
  expect_rc 1
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "eval: expected exactly one error line"
  expect_in err "with_n.h5: frame 7: atom 2 has atomic number 7, not one of the model's elements"
  [ ! -e "$work/p.h5" ] || fail "eval wrote its output"
}

case_frames_eval() {
  # eval on frames: E, dE/dx and the virial equal PyTorch's autograd on the run's saved weights (1e-10; the virial
  # through a strain of atoms and cell, the image shifts strained too), on 1 and 2 ranks; E is invariant under
  # lattice moves of an atom, shifts and turns (dE/dx and W turn), 8 times on 2x2x2 supercells (1e-12), and W equals
  # central differences of E under strains of +-3e-5 (1e-6; tests/train/check_frames_eval.py gives the argument).
  write_frames_sweeps
  run "$GRADFIT_BIN" --out "$work/ev" "$work/fr.yaml"
  expect_rc 0
  "$PYTHON" tests/train/check_frames_eval.py variants "$work/frames.h5" "$work/var" || fail "cannot write the variants"
  for n in 1 2; do
    mkdir -p "$work/p$n"
    for data in frames.h5 var/moved.h5 var/supercell.h5 var/strained.h5; do
      run mpi "$n" "$GRADFIT_BIN" eval "$work/ev/results.h5" "$work/$data" --run best --out "$work/p$n/${data#var/}"
      expect_rc 0
    done
    "$PYTHON" tests/train/check_frames_eval.py reference "$work/ev/results.h5" "$work/frames.h5" \
      "$work/p$n/frames.h5" --tol 1e-10 || fail "-n $n: eval's predictions differ from PyTorch's"
    "$PYTHON" tests/train/check_frames_eval.py check "$work/var" "$work/p$n/frames.h5" "$work/p$n/moved.h5" \
      "$work/p$n/supercell.h5" "$work/p$n/strained.h5" || fail "-n $n: eval's invariances or virial"
  done
}
