# cli cases: using a model outside gradfit_dist on structures of any atoms and cells: the exported TorchScript
# module and scripts/ase_calculator.py against eval on the frames layout. Each function case_NAME is the ctest test
# cli.NAME (tests/cli/CMakeLists.txt reads the names here); cli_test.sh runs it after lib.sh's helpers, in a fresh
# $work folder.

case_frames_export() {
  # Two atom_centered runs trained with energies (float64), one on write_frames.py's frames (molecules, cubic and
  # triclinic cells, slabs, a wire: frames.sh's write_frames_sweeps) and one on the fixed layout's 5-atom molecule
  # (atom_centered.sh's write_atom_centered_data), each evaluated on the frames file (eval on 2 ranks) and exported.
  # Per frame, alone with its cell and pbc, the module's energy_gradient_virial (E, dE/dx, W), forward and gradient
  # equal eval's value, grad and virial to 1e-10 (relative to the frame's largest |E|, |dE/dx|, |W|); one set of
  # atoms in the 12 frames' cells and pbc at once equals the same one cell at a time. GradfitCalculator on ase.Atoms
  # of each frame: energy and forces as eval's to 1e-10, and where the cell has a volume the stress W / V (Voigt) to
  # 1e-10 and ASE's calculate_numerical_stress on the calculator to 1e-6 (of the largest |stress|; step 3e-5: see
  # below); where it has none (the molecules, the slab with c = 0, the wire) get_stress() is
  # PropertyNotImplementedError. An atom of another element (N) is one message naming it, from the module and from
  # the calculator, periodic or not.
  write_frames_sweeps
  write_atom_centered_data
  sed -e 's/grid: .*/grid: {train.value_weight: [0.2]}/' "$work/fr.yaml" >"$work/fx.yaml"
  sed -e 's/epochs: 12/epochs: 3/' -e 's/grid: .*/grid: {train.value_weight: [0.2]}/' "$work/ac.yaml" \
    >"$work/mx.yaml"
  for sweep in fx mx; do
    run "$GRADFIT_BIN" --out "$work/$sweep" "$work/$sweep.yaml"
    expect_rc 0
    run mpi 2 "$GRADFIT_BIN" eval "$work/$sweep/results.h5" "$work/frames.h5" --run best --out "$work/p_$sweep.h5"
    expect_rc 0
    run "$GRADFIT_BIN" export "$work/$sweep/results.h5" --run best --out "$work/$sweep.pt"
    expect_rc 0
  done
  "$PYTHON" - "$work" <<'PY' || fail "the exported module or the calculator differs from eval on frames"
import sys, h5py, numpy as np, torch
sys.path.insert(0, "scripts")
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase_calculator import GradfitCalculator

w = sys.argv[1]
with h5py.File(w + "/frames.h5") as f:
    positions, numbers, atoms = f["positions"][:], f["numbers"][:], f["atoms"][:]
    cells, pbc = f["cell"][:].reshape(-1, 3, 3), f["pbc"][:].astype(bool)
first = np.concatenate([[0], np.cumsum(atoms)])
frames = [slice(first[k], first[k + 1]) for k in range(len(atoms))]


def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(np.asarray(b)).max(), 1e-300))


def expect_refusal(call, fragment, who):
    try:
        call()
    except Exception as error:  # the module's TorchScript error, the calculator's ValueError
        assert fragment in str(error), f"{who}: {error}"
        return str(error).strip().splitlines()[-1]
    raise SystemExit(f"{who} took an N atom")


for run in ("fx", "mx"):
    with h5py.File(f"{w}/p_{run}.h5") as p:
        value, grad, virial = p["value"][:], p["grad"][:], p["virial"][:].reshape(-1, 3, 3)
    module = torch.jit.load(f"{w}/{run}.pt")
    worst = np.zeros(5)
    for k, at in enumerate(frames):
        x, z = torch.from_numpy(positions[at].reshape(1, -1)), torch.from_numpy(numbers[at])
        cell, periodic = torch.from_numpy(cells[k]), torch.from_numpy(pbc[k])
        e, g, v = (t.detach().numpy() for t in module.energy_gradient_virial(x, z, cell, periodic))
        e1 = module.forward(x, z, cell, periodic).detach().numpy()
        g1 = module.gradient(x, z, cell, periodic).numpy()
        worst = np.maximum(worst, [rel(e, value[k]), rel(g.reshape(-1, 3), grad[at]), rel(v[0], virial[k]),
                                   rel(e1, value[k]), rel(g1.reshape(-1, 3), grad[at])])
    # frame 3's atoms in every frame's cell with its pbc, all at once (a cell and pbc per frame) and one by one
    x = torch.from_numpy(np.stack([positions[frames[3]].reshape(-1)] * len(atoms)))
    z = torch.from_numpy(numbers[frames[3]])
    e, g, v = module.energy_gradient_virial(x, z, torch.from_numpy(cells), torch.from_numpy(pbc))
    batch = 0.0
    for k in range(len(atoms)):
        one = module.energy_gradient_virial(x[k:k + 1], z, torch.from_numpy(cells[k]), torch.from_numpy(pbc[k]))
        batch = max(batch, *(rel(s[k:k + 1].detach().numpy(), t.detach().numpy()) for s, t in zip((e, g, v), one)))
    print(f"{run}.pt vs eval on {len(atoms)} frames ({int(pbc.any(1).sum())} periodic): E {worst[0]:.1e}, "
          f"dE/dx {worst[1]:.1e}, W {worst[2]:.1e}; forward {worst[3]:.1e}, gradient {worst[4]:.1e}; "
          f"{len(atoms)} cells at once vs one by one {batch:.1e}; |W| up to {np.abs(virial).max():.3g}")
    assert max(*worst, batch) <= 1e-10

# The calculator on the frames run: energy, forces, stress as eval's; the stress as ASE's numerical stress. Its
# central differences err by rounding, about 2e-16 |E| / (d max |W|) (|E| up to 270 eV with the element energies,
# max |W| down to 4e-3 eV for this briefly trained model: 1.4e-5 at ASE's default d = 1e-6, 5e-7 at d = 3e-5), and by
# truncation, about 24 d^2 (check_frames_eval.py's estimate: 2e-8 at d = 3e-5): measured at most 1e-7 at d = 3e-5.
with h5py.File(w + "/p_fx.h5") as p:
    value, grad, virial = p["value"][:], p["grad"][:], p["virial"][:].reshape(-1, 3, 3)
calc = GradfitCalculator(w + "/fx.pt")
worst, stressed, numeric, without = np.zeros(3), 0, 0.0, []
for k, at in enumerate(frames):
    structure = Atoms(numbers=numbers[at], positions=positions[at], cell=cells[k], pbc=pbc[k])
    structure.calc = calc
    worst[0] = max(worst[0], rel(structure.get_potential_energy(), value[k]))
    worst[1] = max(worst[1], rel(-structure.get_forces(), grad[at]))
    volume = abs(np.linalg.det(cells[k]))
    if not volume:
        try:
            structure.get_stress()
            raise SystemExit(f"frame {k}: a stress without a volume")
        except PropertyNotImplementedError as error:
            without.append(k)
            assert "has no volume" in str(error), str(error)
        continue
    s = (virial[k] + virial[k].T) / (2 * volume)
    worst[2] = max(worst[2], rel(structure.get_stress(), s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]))
    numeric = max(numeric, rel(calc.calculate_numerical_stress(structure, d=3e-5), structure.get_stress()))
    stressed += 1
print(f"calculator vs eval: E {worst[0]:.1e}, F {worst[1]:.1e}, stress vs W / V on {stressed} frames with a volume "
      f"{worst[2]:.1e}; vs ASE's numerical stress {numeric:.1e}; no stress (no volume) for frames {without}")
assert max(worst) <= 1e-10 and numeric <= 1e-6 and stressed == 7 and without == [0, 1, 2, 8, 10]

# An N atom, periodic (frame 5) and not (frame 1): one message naming it.
module = torch.jit.load(w + "/fx.pt")
for k, atom in ((5, 2), (1, 1)):
    at = frames[k]
    z = numbers[at].copy()
    z[atom] = 7
    x = torch.from_numpy(positions[at].reshape(1, -1))
    for method in ("forward", "energy_gradient_virial"):
        line = expect_refusal(lambda: getattr(module, method)(x, torch.from_numpy(z), torch.from_numpy(cells[k]),
                                                              torch.from_numpy(pbc[k])),
                              f"atom {atom} has atomic number 7, an element this model has no network for (its "
                              "elements: H, C, O)", f"the module's {method}")
    print(line)
    structure = Atoms(numbers=z, positions=positions[at], cell=cells[k], pbc=pbc[k])
    structure.calc = calc
    print(expect_refusal(structure.get_potential_energy, f"fx.pt: atom {atom} is N, an element this model has no "
                         "network for (its elements: H, C, O)", "the calculator"))
PY
}
