#!/usr/bin/env python3
"""Tests of scripts/ase_import.py and scripts/ase_calculator.py, without gradfit_dist: the import against ASE's own
reading of EMT-labelled frames (bit for bit), its error lines, and the calculator against TorchScript modules with
the exported interfaces written here (an analytic spring potential; a pair potential over periodic images with the
atom-centred interface, for cells and the stress), NVE energy conservation included.

    /usr/bin/python3 tests/scripts/ase_scripts_test.py        (from the repository root; a few seconds)

Needs ASE, h5py, numpy and PyTorch (Debian: python3-ase python3-h5py python3-torch). Exit 0 when every check passes.
"""
import os
import subprocess
import sys
import tempfile
import unittest
from typing import List, Optional

try:
    import h5py
    import numpy as np
    import torch
    import ase.io
    from ase import Atoms, units
    from ase.calculators.calculator import PropertyNotImplementedError
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet
except ImportError as error:
    sys.exit(f"ase_scripts_test.py: module '{error.name}' is missing for {sys.executable}: run this with "
             "/usr/bin/python3 after apt-get install python3-ase python3-h5py python3-torch")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMPORT_SCRIPT = os.path.join(ROOT, "scripts", "ase_import.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from ase_calculator import GradfitCalculator  # noqa: E402 (after the path it is found on)

# A Cu4Al2 octahedron (neighbours 2.55 Å apart, EMT's range) and ethanol (experiments/molecule/make_data.py's).
OCTAHEDRON = 1.8 * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
ETHANOL_NUMBERS = [6, 6, 8, 1, 1, 1, 1, 1, 1]
ETHANOL = np.array([[-0.0014, 0.0, 0.0], [1.5132, 0.0, 0.0], [1.9883, 1.3442, 0.0], [-0.3918, 1.0187, 0.0],
                    [-0.3918, -0.5093, 0.8821], [-0.3918, -0.5093, -0.8821], [1.8847, -0.5175, 0.8869],
                    [1.8847, -0.5175, -0.8869], [2.9483, 1.3142, 0.0]])


# ---------------------------------------------------------------------------------------------------- frames

def emt_frames(count, seed, symbols="Cu4Al2", energy=True, forces=True):
    """count frames of the octahedron, displaced at random (seeded), with EMT's results stored as a file has them."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        atoms = Atoms(symbols, positions=OCTAHEDRON + rng.normal(scale=0.1, size=OCTAHEDRON.shape), pbc=False)
        atoms.calc = EMT()
        results = {"energy": atoms.get_potential_energy() if energy else None,
                   "forces": atoms.get_forces() if forces else None}
        atoms.calc = SinglePointCalculator(atoms, **{k: v for k, v in results.items() if v is not None})
        frames.append(atoms)
    return frames


def positions_rows(frames):
    return np.array([a.get_positions().reshape(-1) for a in frames])


def gradient_rows(frames):
    return np.array([-a.calc.results["forces"].reshape(-1) for a in frames])


def energies(frames):
    return np.array([a.calc.results["energy"] for a in frames])


def run_import(*args):
    """ase_import.py run as a user runs it: (exit status, stdout, stderr)."""
    done = subprocess.run([sys.executable, IMPORT_SCRIPT] + [str(a) for a in args], capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


# ---------------------------------------------------------------------------------------------------- import

class ImportTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.TemporaryDirectory()
        self.dir = self.work.name
        self.addCleanup(self.work.cleanup)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, frames, fmt=None):
        ase.io.write(self.path(name), frames, format=fmt)
        return self.path(name)

    def write_traj(self, name, frames):
        """The frames as a .traj with their stored results passed as they are: floats (NaN and Inf too) survive
        exactly, where ase.io.write would drop the results of a frame whose positions hold NaN (its calculator's
        check_state takes NaN != NaN for moved atoms)."""
        with ase.io.Trajectory(self.path(name), "w") as trajectory:
            for atoms in frames:
                trajectory.write(atoms.copy(), **atoms.calc.results)
        return self.path(name)

    @staticmethod
    def altered(atoms, positions=None, forces=None, energy=None, numbers=None):
        """A copy of an emt_frames frame with some of its positions, stored forces, energy or atomic numbers
        replaced (the results are stored again as they are, not recomputed)."""
        results = dict(atoms.calc.results)
        results.update({k: v for k, v in (("forces", forces), ("energy", energy)) if v is not None})
        changed = atoms.copy()
        if positions is not None:
            changed.positions = positions
        if numbers is not None:
            changed.numbers = numbers
        changed.calc = SinglePointCalculator(changed, **results)
        return changed

    def imported(self, *args):
        """Imports to out.h5 (a block of 3 frames, so that 10 frames cross block boundaries) and reads it back."""
        out = self.path("out.h5")
        status, stdout, stderr = run_import(*args, "--out", out, "--block", 3, "--overwrite")
        self.assertEqual(status, 0, f"ase_import.py failed: {stderr}")
        self.assertEqual(stderr, "")
        with h5py.File(out, "r") as f:
            data = {name: f[name][()] for name in f}
            data.update({"attr." + k: v for k, v in f.attrs.items()})
            data["maxshape"] = f["x"].maxshape if "x" in f else None
        data["stdout"] = stdout
        return data

    def assert_rows(self, data, frames, with_energy=True):
        """x, grad (and value) equal the frames' positions, -forces (and energies) exactly, in float64."""
        for name, expected in (("x", positions_rows(frames)), ("grad", gradient_rows(frames))):
            self.assertEqual(data[name].dtype, np.float64)
            self.assertTrue(np.array_equal(data[name], expected), f"{name} differs from the source")
        if with_energy:
            self.assertTrue(np.array_equal(data["value"], energies(frames)), "value differs from the energies")
        else:
            self.assertNotIn("value", data)
        self.assertTrue(np.array_equal(data["attr.numbers"], frames[0].numbers))
        self.assertEqual(data["attr.numbers"].dtype, np.int64)
        self.assertEqual(data["attr.frames"], len(frames))
        self.assertEqual(data["attr.units"], "x: Angstrom, grad: eV/Angstrom (dE/dx, the negative forces), value: eV")

    def test_extxyz_is_imported_exactly(self):
        source = self.write("a.xyz", emt_frames(10, seed=1))
        read_back = ase.io.read(source, ":")  # the text's floats, as ASE parses them: what the import must give
        data = self.imported(source)
        self.assert_rows(data, read_back)
        self.assertEqual(data["maxshape"], (None, 18))
        self.assertIn(source, data["attr.source"])
        self.assertEqual(data["stdout"].strip(), f"wrote {self.path('out.h5')}: 10 frames of 6 atoms (Al2Cu4) "
                                                 f"from {source}")

    def test_traj_is_imported_exactly(self):
        frames = emt_frames(10, seed=2)  # a .traj keeps float64 as it is: compare with the arrays in memory
        self.assert_rows(self.imported(self.write("a.traj", frames)), frames)

    def test_index_and_files_in_order(self):
        first, second = emt_frames(10, seed=3), emt_frames(7, seed=4)
        xyz, traj = self.write("a.xyz", first), self.write("b.traj", second)
        data = self.imported(xyz, traj, "--index", "::2")
        expected = ase.io.read(xyz, "::2") + second[::2]
        self.assertEqual(len(expected), 9)
        self.assert_rows(data, expected)
        self.assertIn("::2", data["attr.source"])
        self.assert_rows(self.imported(traj, xyz, "--index", "2:5"), second[2:5] + ase.io.read(xyz, "2:5"))

    def test_ase_db(self):
        frames = emt_frames(8, seed=18)
        self.assert_rows(self.imported(self.write("a.db", frames), "--index", "2:7"), frames[2:7])

    def test_frames_without_energies_give_no_value(self):
        frames = emt_frames(4, seed=5, energy=False)
        data = self.imported(self.write("a.traj", frames))
        self.assert_rows(data, frames, with_energy=False)
        self.assertIn("no value dataset", data["stdout"])

    # ------------------------------------------------------------------------------------------ error lines

    def assert_fails(self, args, *fragments, out=None):
        """Exit status != 0, one line on stderr holding the fragments, and no output or temporary left (--out out,
        out.h5 unless given)."""
        out = out or self.path("out.h5")
        before = set(os.listdir(self.dir))
        status, stdout, stderr = run_import(*args, "--out", out, "--block", 3)
        self.assertNotEqual(status, 0)
        lines = stderr.splitlines()
        self.assertEqual(len(lines), 1, f"not one line on stderr: {stderr!r}")
        self.assertTrue(lines[0].startswith("ase_import.py: "), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        self.assertEqual(set(os.listdir(self.dir)), before, "a file was left behind")
        return lines[0]

    def test_frame_without_forces(self):
        frames = emt_frames(8, seed=6)
        frames[7].calc = SinglePointCalculator(frames[7], energy=1.0)  # after two blocks of 3 were written
        source = self.write("a.traj", frames)
        self.assert_fails([source], f"{source}: frame 7: no forces")

    def test_other_atom_count(self):
        frames = emt_frames(5, seed=7) + emt_frames(1, seed=8, symbols="Cu5Al")
        del frames[5][0]
        source = self.write("a.xyz", frames)
        self.assert_fails([source, "--layout", "fixed"], f"{source}: frame 5: 5 atoms",
                          f"the first frame ({source}, frame 0) has 6")

    def test_other_order_of_species(self):
        frames = emt_frames(3, seed=9) + emt_frames(1, seed=10, symbols="AlCu4Al")
        source = self.write("a.traj", frames)
        self.assert_fails([source, "--layout", "fixed"], f"{source}: frame 3: atom 0 is Al", "it is Cu")

    def test_periodic_cell(self):
        frames = emt_frames(5, seed=11)
        frames[4].set_cell([10.0, 10.0, 10.0])
        frames[4].pbc = True
        source = self.write("a.xyz", frames)
        self.assert_fails([source, "--layout", "fixed"], f"{source}: frame 4: periodic cell (pbc [True True True]): "
                                                         "the fixed layout has no cells")

    # ------------------------------------------------------------------------------------------ frames layout

    def assert_frames(self, data, frames):
        """The frames layout holds the frames exactly: positions, -forces, numbers, counts, energies, cells, pbc."""
        self.assertEqual(data["attr.layout"], "frames")
        self.assertEqual(data["attr.frames"], len(frames))
        self.assertNotIn("x", data)
        self.assertTrue(np.array_equal(data["atoms"], [len(a) for a in frames]))
        self.assertTrue(np.array_equal(data["positions"], np.concatenate([a.get_positions() for a in frames])))
        self.assertTrue(np.array_equal(data["grad"], np.concatenate([-a.calc.results["forces"] for a in frames])))
        self.assertTrue(np.array_equal(data["numbers"], np.concatenate([a.numbers for a in frames])))
        self.assertTrue(np.array_equal(data["value"], energies(frames)))
        cells = [a.cell.array.reshape(-1) if a.pbc.any() else np.zeros(9) for a in frames]
        self.assertTrue(np.array_equal(data["cell"], np.array(cells)))
        self.assertTrue(np.array_equal(data["pbc"], np.array([a.pbc for a in frames], dtype=np.int8)))

    def test_frames_of_other_atoms_and_cells(self):
        # Six frames of the octahedron (two blocks of 3 in the fixed layout), then others: the rows already written
        # move into the frames layout. Then periodic frames of another size.
        frames = emt_frames(6, seed=30) + emt_frames(2, seed=31, symbols="AlCu4Al")
        smaller = frames[7][1:]  # 5 atoms, with EMT's results of its own
        smaller.calc = EMT()
        frames[7] = self.altered(smaller, forces=smaller.get_forces(), energy=smaller.get_potential_energy())
        for atoms in emt_frames(2, seed=32, symbols="Cu4Al2"):
            atoms.set_cell([[7.0, 0, 0], [1.0, 6.5, 0], [0.5, 0.3, 6.8]])
            atoms.pbc = [True, True, False]
            frames.append(atoms)
        data = self.imported(self.write_traj("a.traj", frames))
        self.assert_frames(data, frames)
        self.assertIn("10 frames of 5 to 6 atoms (2 periodic), the frames layout", data["stdout"])
        data = self.imported(self.write_traj("b.traj", frames[:4]), "--layout", "frames")  # asked for
        self.assert_frames(data, frames[:4])

    def test_periodic_errors(self):
        frames = emt_frames(3, seed=33)
        frames[1].set_cell([[4.0, 0, 0], [8.0, 0, 0], [0, 0, 5.0]])
        frames[1].pbc = True
        source = self.write_traj("a.traj", frames)
        self.assert_fails([source], f"{source}: frame 1: periodic cell (pbc [True True True]) whose periodic lattice "
                                    "vectors span no volume")
        frames = emt_frames(3, seed=34)
        frames[2].set_cell([5.0, 5.0, 5.0])
        frames[2].pbc = True
        moved = frames[2].get_positions()
        moved[4] = moved[1] + np.array([5.0, -10.0, 0.0])  # atom 4 on an image of atom 1
        frames[2] = self.altered(frames[2], positions=moved)
        source = self.write_traj("b.traj", frames)
        self.assert_fails([source], f"{source}: frame 2: atoms 1 and 4 are at the same place, modulo the periodic "
                                    "cell")

    def test_energy_missing_after_the_first_frame(self):
        frames = emt_frames(3, seed=12) + emt_frames(2, seed=13, energy=False)
        source = self.write("a.traj", frames)
        self.assert_fails([source], f"{source}: frame 3: no energy")

    def test_error_in_a_later_file_names_it(self):
        first = self.write("a.traj", emt_frames(4, seed=14))
        second_frames = emt_frames(3, seed=15)
        second_frames[2].calc = None
        second = self.write("b.traj", second_frames)
        self.assert_fails([first, second], f"{second}: frame 2: no forces", "frame 6 of all the input")

    def test_unreadable_missing_and_empty_files(self):
        garbage = self.path("garbage.xyz")
        with open(garbage, "w") as f:
            f.write("not a number\nof atoms\n")
        empty = self.path("empty.xyz")
        open(empty, "w").close()
        self.assert_fails([garbage], f"{garbage}: cannot read it")
        self.assert_fails([empty], f"{empty}: cannot read it")
        self.assert_fails([self.path("missing.xyz")], "missing.xyz: no such file")
        frames = self.write("a.traj", emt_frames(2, seed=16))
        self.assert_fails([frames, "--index", "5:"], f"{frames}: no frames with --index 5:")
        self.assert_fails([frames, "--index", "a:b"], "--index a:b")

    def test_existing_output_is_kept_without_overwrite(self):
        out = self.path("out.h5")
        with open(out, "wb") as f:
            f.write(b"keep me")
        source = self.write("a.traj", emt_frames(3, seed=17))
        self.assert_fails([source], "out.h5 exists", "--overwrite")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"keep me")
        self.assert_rows(self.imported(source), ase.io.read(source, ":"))  # imported() gives --overwrite

    # ------------------------------------------------------------------------------------------ bad values
    # The bad frame is frame 7: after two blocks of 3 (assert_fails gives --block 3), so that a partial write would
    # be visible; the frames go through write_traj, so that the values reach the import exactly.

    def frames_with_frame_7(self, seed, **change):
        frames = emt_frames(9, seed=seed)
        frames[7] = self.altered(frames[7], **change)
        return frames

    def test_non_finite_values(self):
        for bad, text in ((np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")):
            with self.subTest(value=text):
                positions = OCTAHEDRON.copy()
                positions[3, 1] = bad
                source = self.write_traj("p.traj", self.frames_with_frame_7(20, positions=positions))
                self.assert_fails([source], f"{source}: frame 7: positions hold NaN or Inf (atom 3)")
                forces = np.zeros((6, 3))
                forces[3, 2] = bad
                source = self.write_traj("f.traj", self.frames_with_frame_7(21, forces=forces))
                self.assert_fails([source], f"{source}: frame 7: forces hold NaN or Inf (atom 3)")
                source = self.write_traj("e.traj", self.frames_with_frame_7(22, energy=bad))
                line = self.assert_fails([source], f"{source}: frame 7: energy is {text}")
                self.assertTrue(line.endswith(f"energy is {text}"), line)

    def test_non_finite_is_named_before_the_bound(self):
        positions = OCTAHEDRON.copy()
        positions[1, 0], positions[3, 2] = 1e300, np.nan
        source = self.write_traj("a.traj", self.frames_with_frame_7(23, positions=positions))
        self.assert_fails([source], f"{source}: frame 7: positions hold NaN or Inf (atom 3)")

    def test_coordinate_bound(self):
        for value, text in ((1e300, "1e+300"), (1.5e6, "1.5e+06"), (-1.5e6, "-1.5e+06")):
            with self.subTest(value=text):
                positions = OCTAHEDRON.copy()
                positions[3, 1] = value
                source = self.write_traj("a.traj", self.frames_with_frame_7(24, positions=positions))
                self.assert_fails([source], f"{source}: frame 7: atom 3 has a coordinate of {text} Å: beyond ±1e6 "
                                            "Å, which no physical structure reaches")
        for value in (9e5, -1e6):  # under the bound, and on it: imported as they are
            with self.subTest(value=value):
                positions = OCTAHEDRON.copy()
                positions[3, 1] = value
                frames = self.frames_with_frame_7(25, positions=positions)
                self.assert_rows(self.imported(self.write_traj("b.traj", frames)), frames)

    def test_atoms_at_the_same_place(self):
        positions = OCTAHEDRON.copy()
        positions[5], positions[4] = positions[2], positions[3]  # the pairs (2, 5) and (3, 4): the lowest is named
        source = self.write_traj("a.traj", self.frames_with_frame_7(26, positions=positions))
        line = self.assert_fails([source], f"{source}: frame 7: atoms 2 and 5 are at the same place")
        self.assertNotIn("3 and 4", line)
        positions = OCTAHEDRON.copy()
        positions[1], positions[4], positions[0] = [0.0, 0.0, 0.0], [-0.0, 0.0, -0.0], [0.0, 1e-9, 0.0]
        source = self.write_traj("b.traj", self.frames_with_frame_7(27, positions=positions))
        # -0.0 is 0.0 (distance 0); atom 0, 1e-9 Å from them, is another place
        self.assert_fails([source], f"{source}: frame 7: atoms 1 and 4 are at the same place")

    def test_atomic_numbers_outside_the_elements(self):
        frames = emt_frames(9, seed=28)
        frames[0] = self.altered(frames[0], numbers=[29, 29, 29, 29, 0, 13])
        source = self.write_traj("a.traj", frames)
        self.assert_fails([source], f"{source}: frame 0: atom 4 has atomic number 0 (X): not an element")
        frames = emt_frames(9, seed=29)
        frames[7] = self.altered(frames[7], numbers=[29, 29, 119, 29, 13, 13])
        source = self.write_traj("b.traj", frames)
        self.assert_fails([source], f"{source}: frame 7: atom 2 has atomic number 119: not an element")

    # ------------------------------------------------------------------------------------------ never over an input

    def test_output_over_an_input_is_refused(self):
        source = self.write("a.xyz", emt_frames(4, seed=30))
        other = self.write("b.traj", emt_frames(2, seed=31))
        with open(source, "rb") as f:
            original = f.read()
        os.symlink(source, self.path("link.xyz"))
        os.link(source, self.path("hard.xyz"))
        os.mkdir(self.path("sub"))
        cases = [(source, source), (self.path("link.xyz"), source), (self.path("hard.xyz"), source),
                 (os.path.join(self.dir, "sub", "..", ".", "a.xyz"), source),  # another spelling of the path
                 (source, self.path("link.xyz"))]  # the input named by the link, --out the file itself
        for out, named in cases:
            for overwrite in ([], ["--overwrite"]):
                with self.subTest(out=out, input=named, overwrite=bool(overwrite)):
                    line = self.assert_fails([other, named] + overwrite, out=out)
                    self.assertEqual(line, f"ase_import.py: --out {out} is the input {named}: the import never "
                                           "writes over its input (--overwrite replaces an earlier output only)")
                    with open(source, "rb") as f:
                        self.assertEqual(f.read(), original, "the input changed")
        self.assertEqual(os.readlink(self.path("link.xyz")), source)
        self.assertEqual(os.stat(source).st_nlink, 2)


# ---------------------------------------------------------------------------------------------------- calculator

class Springs(torch.nn.Module):
    """The exported interface around V(x) = Σ_{i<j} k/2 (r_ij - d_ij)², d_ij the ethanol geometry's distances:
    forward(x: B×n) -> V: B and gradient(x: B×n) -> dV/dx, written out (no autograd), in `precision`."""

    def __init__(self, precision=torch.float64):
        super().__init__()
        a = len(ETHANOL)
        pairs = torch.triu_indices(a, a, 1)
        self.register_buffer("pair_i", pairs[0])
        self.register_buffer("pair_j", pairs[1])
        rest = torch.tensor(ETHANOL)
        self.register_buffer("rest", (rest[pairs[0]] - rest[pairs[1]]).norm(dim=-1).to(precision))
        self.stiffness = 1.0  # eV/Å²: H-C vibrations of ~20 fs, well resolved by 0.5 fs steps
        self.dtype = "float64" if precision == torch.float64 else "float32"
        self.architecture = f"{3 * a}-16-1"
        self.run_name, self.run_id, self.activation = "springs", "test", "none"

    def differences(self, x):
        if x.dtype != self.rest.dtype:  # exported modules convert x; this one checks that callers pass its dtype
            raise RuntimeError("x in another dtype than the model's")
        atoms = x.reshape(x.size(0), -1, 3)
        return atoms.index_select(1, self.pair_i) - atoms.index_select(1, self.pair_j)

    def forward(self, x):
        r = self.differences(x).square().sum(-1).sqrt()
        return (0.5 * self.stiffness * (r - self.rest).square()).sum(1)

    @torch.jit.export
    def gradient(self, x):
        d = self.differences(x)
        r = d.square().sum(-1).sqrt()
        u = (self.stiffness * (r - self.rest) / r).unsqueeze(-1) * d
        out = torch.zeros(x.size(0), x.size(1) // 3, 3, dtype=u.dtype, device=u.device)
        out.index_add_(1, self.pair_i, u)
        out.index_add_(1, self.pair_j, u.neg())
        return out.flatten(-2)


class SpringsWithNumbers(Springs):
    """The same with the attribute numbers, as an export of data that recorded them has."""
    numbers: List[int]

    def __init__(self, precision=torch.float64):
        super().__init__(precision)
        self.numbers = ETHANOL_NUMBERS


class PeriodicPairs(torch.nn.Module):
    """The atom-centred export's interface (inference/export.h: forward, gradient and energy_gradient_virial of x,
    numbers, cell=None, pbc=None; elements, element_names) around E = sum_i b_{Z_i} + 1/2 sum over atoms i and images
    j + n.H (n in -2..2 along the periodic directions, i != j or n != 0) within rc of phi(d) = (rc - d)^3 (1/d - 0.3),
    for cells of lattice vectors longer than rc / 2 with the atoms inside; the virial by autograd through a strain of
    atoms and cell, as the export's. `virial=False`: an export from before cells (forward and gradient of x and
    numbers only)."""
    element_names: str
    numbers: List[int]

    def __init__(self):
        super().__init__()
        self.register_buffer("elements", torch.tensor([1, 6, 8]))
        self.register_buffer("element_energies", torch.tensor([-0.5, -38.0, -75.0], dtype=torch.float64))
        n = torch.arange(-2, 3, dtype=torch.float64)
        self.register_buffer("shifts", torch.cartesian_prod(n, n, n))
        self.element_names = "H, C, O"
        self.numbers = [1, 6, 8]
        self.rc = 2.5
        self.dtype = "float64"
        self.architecture = "atom_centered(9)-H,C,O:48-8-1"
        self.run_name, self.run_id, self.activation = "pairs", "test", "none"

    def energy(self, r, numbers, h, periodic):
        allowed = ~((self.shifts != 0).unsqueeze(0) & ~periodic.unsqueeze(1)).any(2)  # B x S
        offsets = torch.matmul(self.shifts, h)  # B x S x 3
        v = r[:, None, :, None, :] + offsets[:, None, None, :, :] - r[:, :, None, None, :]
        d2 = (v * v).sum(-1)
        near = allowed[:, None, None, :] & (d2 < self.rc ** 2) & (d2 > 1e-6)
        d = torch.where(near, d2, torch.ones_like(d2)).sqrt()
        phi = torch.where(near, (self.rc - d) ** 3 * (1 / d - 0.3), torch.zeros_like(d))
        species = (numbers.unsqueeze(1) == self.elements.unsqueeze(0)).long().argmax(1)
        return 0.5 * phi.sum([1, 2, 3]) + self.element_energies.index_select(0, species).sum()

    def structure(self, x, cell: Optional[torch.Tensor], pbc: Optional[torch.Tensor]):
        r = x.reshape(x.size(0), -1, 3)
        if cell is None:
            return r, torch.zeros(x.size(0), 3, 3, dtype=x.dtype), torch.zeros(x.size(0), 3) != 0
        periodic = torch.ones(3) != 0 if pbc is None else pbc != 0
        return r, cell.reshape(-1, 3, 3).expand(x.size(0), 3, 3), periodic.reshape(-1, 3).expand(x.size(0), 3)

    def forward(self, x, numbers, cell: Optional[torch.Tensor] = None, pbc: Optional[torch.Tensor] = None):
        r, h, periodic = self.structure(x, cell, pbc)
        return self.energy(r, numbers, h, periodic)

    @torch.jit.export
    def gradient(self, x, numbers, cell: Optional[torch.Tensor] = None, pbc: Optional[torch.Tensor] = None):
        return self.energy_gradient_virial(x, numbers, cell, pbc)[1]

    @torch.jit.export
    def energy_gradient_virial(self, x, numbers, cell: Optional[torch.Tensor] = None,
                               pbc: Optional[torch.Tensor] = None):
        r, h, periodic = self.structure(x, cell, pbc)
        r = r.detach().requires_grad_(True)
        strain = torch.zeros(x.size(0), 3, 3, dtype=x.dtype).requires_grad_(True)
        deform = (torch.eye(3, dtype=x.dtype) + strain).transpose(1, 2)
        e = self.energy(torch.matmul(r, deform), numbers, torch.matmul(h, deform), periodic)
        g, w = torch.autograd.grad([e.sum()], [r, strain])
        assert g is not None and w is not None
        return e.detach(), g.reshape(x.shape), w


class MoleculePairs(torch.nn.Module):
    """PeriodicPairs as an atom-centred export from before cells were supported: forward and gradient of x and
    numbers, no energy_gradient_virial."""
    element_names: str

    def __init__(self):
        super().__init__()
        self.pairs = PeriodicPairs()
        self.register_buffer("elements", self.pairs.elements)
        self.element_names = self.pairs.element_names
        self.dtype, self.architecture = self.pairs.dtype, self.pairs.architecture

    def forward(self, x, numbers):
        return self.pairs.forward(x, numbers)

    @torch.jit.export
    def gradient(self, x, numbers):
        return self.pairs.gradient(x, numbers)


# H, C, O and H in a triclinic cell, each lattice vector longer than PeriodicPairs' rc / 2, the atoms inside it.
CELL = np.array([[3.1, 0.0, 0.0], [0.6, 2.9, 0.0], [-0.4, 0.5, 3.3]])
CELL_NUMBERS = [1, 6, 8, 1]
CELL_POSITIONS = np.array([[0.3, 0.4, 0.5], [1.5, 1.2, 1.1], [2.4, 2.1, 2.6], [0.8, 2.3, 1.9]])


def ethanol(seed, numbers=ETHANOL_NUMBERS):
    rng = np.random.default_rng(seed)
    return Atoms(numbers=numbers, positions=ETHANOL + rng.normal(scale=0.05, size=ETHANOL.shape), pbc=False)


class CalculatorTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.TemporaryDirectory()
        self.addCleanup(self.work.cleanup)

    def saved(self, module, name="model.pt"):
        path = os.path.join(self.work.name, name)
        torch.jit.script(module).save(path)
        return path, torch.jit.load(path)

    def module_results(self, module, positions, precision=torch.float64):
        x = torch.tensor(positions.reshape(1, -1), dtype=precision)
        with torch.no_grad():
            return module.forward(x)[0].item(), -module.gradient(x).double().numpy().reshape(-1, 3)

    def test_energy_and_forces_are_the_modules(self):
        path, module = self.saved(SpringsWithNumbers())
        atoms = ethanol(seed=1)
        atoms.calc = GradfitCalculator(path)
        energy, forces = self.module_results(module, atoms.get_positions())
        self.assertGreater(abs(energy), 1e-3)  # displaced from the rest geometry: not a trivial zero
        self.assertAlmostEqual(atoms.get_potential_energy(), energy, delta=1e-12)
        self.assertEqual(atoms.get_forces().dtype, np.float64)
        np.testing.assert_allclose(atoms.get_forces(), forces, rtol=0, atol=1e-12)
        self.assertEqual(atoms.get_potential_energy(force_consistent=True), atoms.get_potential_energy())
        # The module's gradient is V's: central differences of the calculator's energy agree with its forces.
        h, i, k = 1e-5, 4, 1
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, k] += h
        minus.positions[i, k] -= h
        for a in (plus, minus):
            a.calc = atoms.calc
        slope = (plus.get_potential_energy() - minus.get_potential_energy()) / (2 * h)
        self.assertAlmostEqual(-slope, forces[i, k], delta=1e-6)

    def test_float32_model_computes_in_float32(self):
        path, module = self.saved(SpringsWithNumbers(torch.float32))
        atoms = ethanol(seed=2)
        atoms.calc = GradfitCalculator(path)
        energy, forces = self.module_results(module, atoms.get_positions(), torch.float32)
        self.assertEqual(atoms.get_potential_energy(), energy)
        self.assertEqual(atoms.get_forces().dtype, np.float64)
        self.assertTrue(np.array_equal(atoms.get_forces(), forces))

    def test_evaluate_equals_calculate(self):
        path, _ = self.saved(SpringsWithNumbers())
        calculator = GradfitCalculator(path)
        frames = [ethanol(seed) for seed in range(7)]
        positions = np.array([a.get_positions() for a in frames])
        batch_energies, batch_forces = calculator.evaluate(positions, chunk_frames=3)  # chunks of 3, 3 and 1
        self.assertEqual(batch_energies.shape, (7,))
        self.assertEqual(batch_forces.shape, (7, 9, 3))
        for i, atoms in enumerate(frames):
            atoms.calc = GradfitCalculator(path)
            self.assertAlmostEqual(batch_energies[i], atoms.get_potential_energy(), delta=1e-12)
            np.testing.assert_allclose(batch_forces[i], atoms.get_forces(), rtol=0, atol=1e-12)
        with self.assertRaisesRegex(ValueError, r"takes 27 coordinates, .* shape \(9, 3\) .*one frame"):
            calculator.evaluate(positions[0])
        flat_energies, flat_forces = calculator.evaluate(positions.reshape(7, -1))
        self.assertTrue(np.array_equal(flat_energies, calculator.evaluate(positions)[0]))
        self.assertTrue(np.array_equal(flat_forces, calculator.evaluate(positions)[1]))

    def assert_one_line_error(self, atoms, *fragments):
        with self.assertRaises(ValueError) as caught:
            atoms.get_potential_energy()
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        for fragment in fragments:
            self.assertIn(fragment, message)

    def test_other_atoms_than_the_models(self):
        path, _ = self.saved(SpringsWithNumbers())
        water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], pbc=False)
        water.calc = GradfitCalculator(path)
        self.assert_one_line_error(water, "model.pt was trained on 9 atoms (C2H6O: 6 6 8 1 1 1 1 1 1), "
                                          "these atoms are 3 atoms (H2O: 8 1 1)")
        swapped = ethanol(seed=3, numbers=[6, 8, 6, 1, 1, 1, 1, 1, 1])
        swapped.calc = GradfitCalculator(path)
        self.assert_one_line_error(swapped, "trained on 9 atoms (C2H6O: 6 6 8 1", "(C2H6O: 6 8 6 1")

    def test_periodic_atoms_need_an_atom_centred_model(self):
        path, _ = self.saved(SpringsWithNumbers())
        atoms = ethanol(seed=4)
        atoms.set_cell([12.0, 12.0, 12.0])
        atoms.pbc = True
        atoms.calc = GradfitCalculator(path)
        self.assert_one_line_error(atoms, "periodic cell (pbc [True True True])",
                                   "only an atom-centred model (model.features atom_centered) takes periodic cells")
        atoms.pbc = False
        atoms.get_potential_energy()
        with self.assertRaises(PropertyNotImplementedError):  # no virial: no stress, even with a volume
            atoms.get_stress()
        with self.assertRaisesRegex(ValueError, "only an atom-centred model .* takes periodic cells"):
            atoms.calc.evaluate(atoms.get_positions()[np.newaxis], cell=CELL)

    def cell_atoms(self, path, cell=CELL, pbc=True, positions=CELL_POSITIONS):
        atoms = Atoms(numbers=CELL_NUMBERS, positions=positions, cell=cell, pbc=pbc)
        atoms.calc = GradfitCalculator(path)
        return atoms

    def test_periodic_energy_forces_and_stress(self):
        # The calculator passes the cell and pbc: energy, forces and W / V (Voigt [xx, yy, zz, yz, xz, xy], W's
        # symmetric part) are the module's; the stress is ASE's numerical stress (strains of cell and atoms by
        # symmetric eps) to 1e-6 of its largest component, the forces central differences of the energy.
        path, module = self.saved(PeriodicPairs())
        atoms = self.cell_atoms(path)
        e, g, w = module.energy_gradient_virial(torch.from_numpy(CELL_POSITIONS.reshape(1, -1)),
                                                torch.tensor(CELL_NUMBERS), torch.from_numpy(CELL),
                                                torch.tensor([True] * 3))
        w = w[0].numpy()
        self.assertAlmostEqual(atoms.get_potential_energy(), float(e[0]), delta=1e-12)
        np.testing.assert_allclose(atoms.get_forces(), -g.numpy().reshape(-1, 3), rtol=0, atol=1e-12)
        volume = abs(np.linalg.det(CELL))
        expected = np.array([w[0, 0], w[1, 1], w[2, 2], (w[1, 2] + w[2, 1]) / 2, (w[0, 2] + w[2, 0]) / 2,
                             (w[0, 1] + w[1, 0]) / 2]) / volume
        stress = atoms.get_stress()
        self.assertEqual(stress.shape, (6,))
        np.testing.assert_allclose(stress, expected, rtol=0, atol=1e-14)
        self.assertGreater(np.abs(stress).min(), 1e-4)  # every component far from zero: the check is not vacuous
        numeric = atoms.calc.calculate_numerical_stress(atoms, d=1e-5)
        self.assertLess(np.abs(numeric - stress).max() / np.abs(stress).max(), 1e-6)
        alone = Atoms(numbers=CELL_NUMBERS, positions=CELL_POSITIONS, pbc=False)  # the images count
        alone.calc = GradfitCalculator(path)
        self.assertGreater(abs(alone.get_potential_energy() - atoms.get_potential_energy()), 0.1)
        h, i, k = 1e-5, 1, 2
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, k] += h
        minus.positions[i, k] -= h
        for a in (plus, minus):
            a.calc = atoms.calc
        slope = (plus.get_potential_energy() - minus.get_potential_energy()) / (2 * h)
        self.assertAlmostEqual(-slope, atoms.get_forces()[i, k], delta=1e-7)

    def test_stress_needs_a_volume(self):
        path, _ = self.saved(PeriodicPairs())
        slab = self.cell_atoms(path, cell=[CELL[0], CELL[1], [0, 0, 0]], pbc=[True, True, False])
        slab.get_potential_energy()
        with self.assertRaisesRegex(PropertyNotImplementedError, r"model.pt: the stress is W / volume, and these "
                                    r"atoms' cell has no volume \(pbc \[True True False\], lengths 3\.1 2\.96142 0\)"):
            slab.get_stress()
        molecule = self.cell_atoms(path, cell=None, pbc=False)
        with self.assertRaisesRegex(PropertyNotImplementedError, "has no volume"):
            molecule.get_stress()
        boxed = self.cell_atoms(path, cell=12 * np.eye(3), pbc=False)  # a molecule in a box: W / V, as EMT's
        self.assertEqual(boxed.get_potential_energy(), molecule.get_potential_energy())
        numeric = boxed.calc.calculate_numerical_stress(boxed, d=1e-5)
        self.assertLess(np.abs(numeric - boxed.get_stress()).max() / np.abs(boxed.get_stress()).max(), 1e-6)

    def test_flat_cell(self):
        # Periodic lattice vectors that span no volume (ASE's Atoms(pbc=True) without a cell has zero vectors) are one
        # line, before the module's assertion and its traceback.
        path, _ = self.saved(PeriodicPairs())
        atoms = self.cell_atoms(path, cell=None, pbc=True)
        self.assert_one_line_error(atoms, "model.pt: the cell's periodic lattice vectors span no volume (pbc [True "
                                          "True True], vectors of lengths 0 0 0)")
        slab = self.cell_atoms(path, cell=[CELL[0], 2 * CELL[0], [0, 0, 0]], pbc=[True, True, False])
        self.assert_one_line_error(slab, "span no volume (pbc [True True False], vectors of lengths 3.1 6.2 0)")
        slab.cell[2] = [0, 0, 5.0]  # a non-periodic c does not matter
        self.assert_one_line_error(slab, "span no volume")
        slab.cell[1] = CELL[1]
        slab.get_potential_energy()
        frames = np.stack([CELL_POSITIONS] * 3)
        cells = np.stack([CELL, CELL, [CELL[0], CELL[1], CELL[0] + CELL[1]]])
        with self.assertRaisesRegex(ValueError, "model.pt: frame 2: the cell's periodic lattice vectors span no "
                                    "volume"):
            atoms.calc.evaluate(frames, numbers=CELL_NUMBERS, cell=cells)

    def test_evaluate_takes_cells(self):
        # Frames with cells of their own at once equal calculate frame by frame; virials=True returns W.
        path, _ = self.saved(PeriodicPairs())
        calculator = GradfitCalculator(path)
        rng = np.random.default_rng(7)
        cells = CELL + rng.normal(scale=0.05, size=(5, 3, 3))
        positions = CELL_POSITIONS + rng.normal(scale=0.05, size=(5, 4, 3))
        pbc = [[True, True, True], [True, False, True], [False, False, False], [True, True, True], [False, True, True]]
        energies, forces, virials = calculator.evaluate(positions, numbers=CELL_NUMBERS, cell=cells, pbc=pbc,
                                                        chunk_frames=2, virials=True)
        self.assertEqual(virials.shape, (5, 3, 3))
        for b in range(5):
            atoms = self.cell_atoms(path, cell=cells[b], pbc=pbc[b], positions=positions[b])
            self.assertAlmostEqual(energies[b], atoms.get_potential_energy(), delta=1e-12)
            np.testing.assert_allclose(forces[b], atoms.get_forces(), rtol=0, atol=1e-12)
            w = (virials[b] + virials[b].T) / (2 * abs(np.linalg.det(cells[b])))
            np.testing.assert_allclose(w[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]], atoms.get_stress(), rtol=0,
                                       atol=1e-14)
        shared = calculator.evaluate(positions, numbers=CELL_NUMBERS, cell=CELL)[0]  # one cell, periodic a, b, c
        self.assertEqual(shared[0], calculator.evaluate(positions[:1], numbers=CELL_NUMBERS, cell=CELL[None],
                                                        pbc=[True] * 3)[0][0])
        with self.assertRaisesRegex(ValueError, r"cell of shape \(2, 3, 3\): evaluate takes \(3, 3\)"):
            calculator.evaluate(positions, numbers=CELL_NUMBERS, cell=cells[:2])
        with self.assertRaisesRegex(ValueError, r"model.pt: pbc \[True True True\] without a cell"):
            calculator.evaluate(positions, numbers=CELL_NUMBERS, pbc=[True] * 3)

    def test_export_from_before_cells(self):
        # An atom-centred export without energy_gradient_virial still computes molecules, and says to export again
        # for a cell.
        path, module = self.saved(MoleculePairs(), name="old.pt")
        molecule = self.cell_atoms(path, cell=None, pbc=False)
        x = torch.from_numpy(CELL_POSITIONS.reshape(1, -1))
        self.assertAlmostEqual(molecule.get_potential_energy(), float(module.forward(x, torch.tensor(CELL_NUMBERS))),
                               delta=1e-12)
        periodic = self.cell_atoms(path)
        self.assert_one_line_error(periodic, "old.pt: these atoms have a periodic cell (pbc [True True True]), and "
                                             "this export takes no cell (it has no energy_gradient_virial): make one "
                                             "with `gradfit_dist export")

    def test_model_without_numbers_takes_any_species(self):
        path, module = self.saved(Springs(), name="plain.pt")
        copper = ethanol(seed=5, numbers=[29] * 9)
        copper.calc = GradfitCalculator(path)
        energy, forces = self.module_results(module, copper.get_positions())
        self.assertAlmostEqual(copper.get_potential_energy(), energy, delta=1e-12)
        np.testing.assert_allclose(copper.get_forces(), forces, rtol=0, atol=1e-12)
        fewer = Atoms("Cu8", positions=ETHANOL[:8], pbc=False)
        fewer.calc = GradfitCalculator(path)
        self.assert_one_line_error(fewer, "plain.pt takes 27 coordinates", "8 atoms")

    def test_nve_conserves_energy(self):
        path, _ = self.saved(SpringsWithNumbers())
        atoms = ethanol(seed=6)
        atoms.calc = GradfitCalculator(path)
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.RandomState(0))
        start_potential = atoms.get_potential_energy()
        start = start_potential + atoms.get_kinetic_energy()
        totals, potentials = [], []

        def record():
            potentials.append(atoms.get_potential_energy())
            totals.append(potentials[-1] + atoms.get_kinetic_energy())

        with VelocityVerlet(atoms, 0.5 * units.fs) as dynamics:  # `with`: it closes the log it opens
            dynamics.attach(record, interval=1)
            dynamics.run(100)
        drift = np.max(np.abs(np.array(totals) - start))
        swing = np.ptp(potentials)  # the energy that moved between kinetic and potential: what a drift compares to
        self.assertGreater(swing, 0.05, "the atoms hardly moved: the check would be vacuous")
        self.assertLess(drift, 0.01 * swing, f"total energy drifted by {drift:.3g} eV over 100 steps")


if __name__ == "__main__":
    unittest.main()
