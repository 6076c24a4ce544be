#!/usr/bin/env python3
"""An ASE calculator for a potential exported by `gradfit_dist export`: energy V(x) (eV), forces -dV/dx (eV/Å) and,
for an atom-centred model in a cell, the stress (eV/Å³) from the TorchScript file, for ASE's molecular dynamics,
optimizers and analysis.

As a library (from the repository root; any other folder works with its path to scripts/):

    import sys; sys.path.insert(0, "scripts")
    from ase_calculator import GradfitCalculator
    atoms.calc = GradfitCalculator("model.pt")            # device="cuda" to compute on the GPU
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    energies, forces = atoms.calc.evaluate(positions)      # many frames at once: (B, a, 3) -> (B,), (B, a, 3)
    stress = atoms.get_stress()                            # atoms in a cell, atom-centred model: W / volume, Voigt

A short MD run (NVE, 0.5 fs steps):

    import sys; sys.path.insert(0, "scripts")
    from ase import io, units; from ase.md.verlet import VelocityVerlet
    from ase_calculator import GradfitCalculator
    atoms = io.read("ethanol.xyz"); atoms.calc = GradfitCalculator("model.pt")
    VelocityVerlet(atoms, 0.5 * units.fs, trajectory="md.traj").run(1000)

The atoms must be the model's: when its training data had the attribute numbers (ase_import.py and
experiments/molecule/make_data.py write it), the same atomic numbers in the same order; otherwise 3 coordinates per
atom for the model's n inputs. An atom-centred model (model.features atom_centered) takes any molecule of its
elements instead (evaluate's numbers=: the atoms' atomic numbers), with or without a periodic cell: atoms whose pbc
has a periodic direction go to the module with their cell and pbc, its periodic images within the cutoffs taken into
account (evaluate's cell= and pbc=). Positions are in Å, energies in eV, as the training data were (ase_import.py's
units). The model computes in its own dtype (float32 or float64); the results come back as float64 numpy arrays.

Stress (atom-centred models): ASE's convention, stress = W / V as the Voigt 6-vector [xx, yy, zz, yz, xz, xy] in
eV/Å³, W_ab = dE/d(eps_ab) the virial under the strain x -> (1 + eps) x of atoms and cell together (the module's
energy_gradient_virial, W's symmetric part) and V the cell's volume; positive under tension (the energy rises as the
cell grows). It needs a cell with a volume (any pbc, as ASE's EMT): for a slab or a wire whose cell has a zero vector,
or atoms without a cell, get_stress() raises PropertyNotImplementedError.

Bad input is one ValueError with a one-line message naming the model file and what is wrong: a path that is no
exported model (missing, a folder, an HDF5 results or data file, no TorchScript archive, a TorchScript module
without `gradient` and `architecture`), other atoms than the model's, a periodic cell for a model that is not
atom-centred, periodic lattice vectors that span no volume, positions (or evaluate's cell and pbc) of another shape,
and positions that are not finite (NaN or Inf: the first such atom, and frame for evaluate, is named).

As a script, it describes models: ase_calculator.py MODEL.pt... prints each one's run, architecture and atoms.
Needs ASE, numpy and PyTorch (Debian: python3-ase python3-torch; run it with /usr/bin/python3).
"""
import os
import re
import sys
import zipfile

from tool_files import HDF5_SIGNATURE, short_reason  # scripts/, beside this file


def missing_module_message(name, package):
    return (f"ase_calculator.py: {name} is missing for the interpreter {sys.executable}: install {package} and run "
            "this with /usr/bin/python3")


try:
    import numpy as np
except ImportError:
    raise ImportError(missing_module_message("numpy", "python3-numpy")) from None
try:
    from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
    from ase.data import chemical_symbols
    from ase.symbols import Symbols
except ImportError:
    raise ImportError(missing_module_message("ASE", "python3-ase")) from None
try:
    import torch
except ImportError:
    raise ImportError(missing_module_message("torch", "python3-torch (PyTorch)")) from None

CHUNK_FRAMES = 4096  # frames per forward/gradient call in evaluate: bounds the memory of the activations
DTYPES = {"float32": torch.float32, "float64": torch.float64}
EXPORT_HINT = "make one with `gradfit_dist export RESULTS --run best --out model.pt`"


def torch_save_archive(path):
    """Whether path is a zip of torch.save (a pickled state dict or module: data.pkl, no TorchScript constants)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(n.endswith("/data.pkl") for n in names) and not any(n.endswith("/constants.pkl") for n in names)


def load_model(path, device):
    """The TorchScript module of an exported model at path, on device; a one-line ValueError naming the file and what
    it is when it is not one (see the module's docstring)."""
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not an exported model: {EXPORT_HINT}")
    try:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror or short_reason(error)})") from None
    if head == HDF5_SIGNATURE:
        raise ValueError(f"{path} is an HDF5 file (a gradfit_dist results or data file?), not an exported model: "
                         f"{EXPORT_HINT}")
    if not head:
        raise ValueError(f"{path} is empty (0 bytes), not an exported model: {EXPORT_HINT}")
    if torch_save_archive(path):
        raise ValueError(f"{path} is a torch.save file (a state dict or pickled module?), not a TorchScript archive "
                         f"of an exported model: {EXPORT_HINT}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{path}: device {device}: this PyTorch sees no CUDA device (use device=\"cpu\")")
    try:
        model = torch.jit.load(path, map_location=device)
    except (RuntimeError, ValueError, OSError) as error:  # torch's errors for a file that is no TorchScript archive
        raise ValueError(f"{path} is not a TorchScript archive ({short_reason(error)}), not an exported model: "
                         f"{EXPORT_HINT}") from None
    missing = [name for name in ("gradient", "architecture") if not hasattr(model, name)]
    if missing:
        raise ValueError(f"{path} is a TorchScript module but not a gradfit_dist export (it has no "
                         f"{' and no '.join(missing)}): {EXPORT_HINT}")
    return model


def input_dimension(architecture):
    """n from the architecture attribute: '27-64-64-1' -> 27, 'inverse_distances(27)-36-64-1' -> 27; else None."""
    match = re.match(r"^(?:\w+\((\d+)\)|(\d+))-", architecture or "")
    return int(match.group(1) or match.group(2)) if match else None


def describe(numbers):
    """'9 atoms (C2H6O: 6 6 8 1 1 1 1 1 1)': the count, the formula and the numbers in order."""
    numbers = [int(z) for z in numbers]
    return f"{len(numbers)} atoms ({Symbols(numbers).get_chemical_formula()}: {' '.join(map(str, numbers))})"


def pbc_text(pbc):
    """[True True False], not numpy's '[ True  True False]'."""
    return "[" + " ".join(str(bool(p)) for p in pbc) + "]"


class GradfitCalculator(Calculator):
    """Energy, forces and stress from a TorchScript potential of `gradfit_dist export` (see the module's
    docstring)."""

    # free_energy is the energy too (no electronic temperature): ASE asks for it in get_potential_energy(
    # force_consistent=True), which optimizers such as FIRE and BFGS's line search may call. stress: atom-centred
    # models only (__init__ drops it for the others).
    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model_path, device="cpu", **kwargs):
        Calculator.__init__(self, **kwargs)
        self.model_path = self.name_in_errors = str(model_path)
        try:
            self.device = torch.device(device)
        except RuntimeError as error:  # torch's list of device types, on several lines
            raise ValueError(f"{self.model_path}: device {device!r}: {short_reason(error)}") from None
        self.model = load_model(self.model_path, self.device)
        self.dtype = self.model_dtype()
        # The module has `numbers` only when its training data recorded them (hasattr: absent, not empty).
        self.numbers = [int(z) for z in self.model.numbers] if hasattr(self.model, "numbers") else None
        # An atom-centred model (model.features atom_centered) takes any structure of its elements, and one exported
        # since cells were supported (energy_gradient_virial) takes a cell too and gives the virial.
        self.elements = [int(z) for z in self.model.elements] if hasattr(self.model, "element_names") else None
        self.takes_cells = self.elements is not None and hasattr(self.model, "energy_gradient_virial")
        if not self.takes_cells:
            self.implemented_properties = [p for p in self.implemented_properties if p != "stress"]
        self.inputs = input_dimension(getattr(self.model, "architecture", None))
        if self.numbers is not None and self.inputs is not None and self.inputs != 3 * len(self.numbers):
            raise ValueError(f"{self.name_in_errors} has {self.inputs} inputs, but its numbers are "
                             f"{describe(self.numbers)}: 3 coordinates per atom would be {3 * len(self.numbers)}")

    def model_dtype(self):
        """The dtype the model computes in: its attribute dtype, or its first parameter's where it has none."""
        name = getattr(self.model, "dtype", None)
        if name in DTYPES:
            return DTYPES[name]
        parameter = next(self.model.parameters(), None)
        return parameter.dtype if parameter is not None else torch.float64

    def check_atoms(self, atoms):
        """One-line ValueError unless the atoms are the model's: the model's atoms or count, periodic only for an
        atom-centred model."""
        if atoms.pbc.any() and not self.takes_cells:
            self.refuse_cells(f"these atoms have a periodic cell (pbc {pbc_text(atoms.pbc)})")
        if self.elements is not None:
            self.check_elements(atoms.numbers)
        elif self.numbers is not None:
            if list(atoms.numbers) != self.numbers:
                raise ValueError(f"{self.name_in_errors} was trained on {describe(self.numbers)}, these atoms are "
                                 f"{describe(atoms.numbers)}")
        elif self.inputs is not None and 3 * len(atoms) != self.inputs:
            raise ValueError(f"{self.name_in_errors} takes {self.inputs} coordinates, these atoms are {len(atoms)} "
                             f"atoms ({3 * len(atoms)} coordinates)")

    def refuse_cells(self, what):
        """The one-line ValueError for a cell given to a model that takes none."""
        if self.elements is not None:  # an atom-centred export from before cells were supported
            raise ValueError(f"{self.name_in_errors}: {what}, and this export takes no cell (it has no "
                             f"energy_gradient_virial): {EXPORT_HINT} again")
        raise ValueError(f"{self.name_in_errors}: {what}: only an atom-centred model (model.features atom_centered) "
                         "takes periodic cells")

    def check_elements(self, numbers):
        """One-line ValueError naming the first atom of an element the atom-centred model has no network for."""
        for i, z in enumerate(numbers):
            if int(z) not in self.elements:
                names = ", ".join(chemical_symbols[e] for e in self.elements)
                element = chemical_symbols[int(z)] if 0 <= int(z) < len(chemical_symbols) else f"atomic number {z}"
                raise ValueError(f"{self.name_in_errors}: atom {i} is {element}, an element this model has no network "
                                 f"for (its elements: {names})")

    def flat_positions(self, positions, numbers=None):
        """(B, a, 3) or (B, 3a) -> a float64 (B, 3a) array; a one-line ValueError for other shapes or sizes."""
        x = np.asarray(positions, dtype=np.float64)
        if x.ndim == 3 and x.shape[2] == 3:
            x = x.reshape(x.shape[0], -1)
        if x.ndim != 2 or x.shape[1] % 3:
            raise ValueError(f"positions of shape {x.shape}: evaluate takes (frames, atoms, 3) or (frames, 3 atoms)")
        numbers = numbers if numbers is not None else self.numbers
        expected = 3 * len(numbers) if numbers is not None else self.inputs
        if expected is not None and x.shape[1] != expected:
            one_frame = " (one frame? pass positions[np.newaxis])" if x.shape == (expected // 3, 3) else ""
            raise ValueError(f"{self.name_in_errors} takes {expected} coordinates, these positions of shape "
                             f"{np.shape(positions)} have {x.shape[1]} a frame{one_frame}")
        return x

    def flat_cells(self, cell, pbc, frames, named=True):
        """cell (3, 3) or (B, 3, 3) and pbc (3 or (B, 3) booleans; None: periodic along a, b and c) as float64 (B, 3, 3)
        and bool (B, 3) arrays; None, None without a cell. A one-line ValueError for other shapes, a cell that is not
        finite, periodic lattice vectors that span no volume (the first such frame named, when named), pbc without a
        cell, and a cell for a model that takes none."""
        if cell is None:
            if pbc is not None and np.any(pbc):
                raise ValueError(f"{self.name_in_errors}: pbc {pbc_text(np.ravel(pbc))} without a cell")
            return None, None
        if not self.takes_cells:
            self.refuse_cells("evaluate was given a cell")
        h = np.asarray(cell, dtype=np.float64)
        if h.shape not in ((3, 3), (frames, 3, 3)):
            raise ValueError(f"cell of shape {h.shape}: evaluate takes (3, 3) (rows: the lattice vectors) or "
                             f"({frames}, 3, 3) for {frames} frames")
        if not np.isfinite(h).all():
            raise ValueError(f"{self.name_in_errors}: the cell is not finite")
        periodic = np.ones(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
        if periodic.shape not in ((3,), (frames, 3)):
            raise ValueError(f"pbc of shape {periodic.shape}: evaluate takes 3 booleans or ({frames}, 3)")
        h, periodic = np.broadcast_to(h, (frames, 3, 3)), np.broadcast_to(periodic, (frames, 3))
        # The module's own test, before it raises it with its traceback: the Gram determinant of the periodic vectors
        # against the product of their squared lengths (the sine of their angles, squared).
        lattice = h * periodic[:, :, np.newaxis]
        gram = lattice @ lattice.transpose(0, 2, 1) + np.eye(3) * ~periodic[:, np.newaxis, :]
        lengths = np.where(periodic, (lattice ** 2).sum(2), 1.0).prod(1)
        flat = np.flatnonzero(~(np.linalg.det(gram) > 1e-24 * lengths))
        if flat.size:
            k = flat[0]
            where = f"frame {k}: " if named else ""
            raise ValueError(f"{self.name_in_errors}: {where}the cell's periodic lattice vectors span no volume (pbc "
                             f"{pbc_text(periodic[k])}, vectors of lengths "
                             f"{' '.join(f'{v:g}' for v in np.linalg.norm(h[k], axis=1))})")
        return h, periodic

    def check_finite(self, x, frames=True):
        """One-line ValueError naming the first atom (and frame, when frames) of x (B, 3a) whose position is NaN or
        Inf: the model would give NaN energies and forces for it without a word."""
        finite = np.isfinite(x)
        if finite.all():
            return
        frame, column = np.argwhere(~finite)[0]
        atom = column // 3
        where = f"frame {frame}, atom {atom}" if frames else f"atom {atom}"
        position = ", ".join(f"{v:g}" for v in x[frame, 3 * atom:3 * atom + 3])
        bad = int((~finite).any(axis=1).sum())
        more = f"; frames with such positions: {bad} of {len(x)}" if frames and len(x) > 1 else ""
        raise ValueError(f"{self.name_in_errors}: {where} has a position that is not finite ({position}){more}")

    def evaluate(self, positions, chunk_frames=CHUNK_FRAMES, numbers=None, cell=None, pbc=None, virials=False):
        """Energies (B,) and forces (B, a, 3), float64 numpy, of B frames of positions (B, a, 3) or (B, 3a), Å.
        The frames go through the model chunk_frames at a time, so memory stays bounded for any B. An atom-centred
        model takes the atomic numbers of any structure of its elements (default: the training data's), a cell
        ((3, 3), rows the lattice vectors, or (B, 3, 3)) with pbc (3 booleans or (B, 3); default: all periodic), and
        with virials=True also returns the virials W (B, 3, 3), W_ab = dE/d(eps_ab) under the strain
        x -> (1 + eps) x of atoms and cell together (eV)."""
        if numbers is not None and self.elements is None:
            raise ValueError(f"{self.name_in_errors} is not atom-centred: it takes its training atoms, no numbers")
        if virials and not self.takes_cells:
            self.refuse_cells("evaluate was asked for virials")
        if numbers is not None:
            self.check_elements(numbers)
        x = self.flat_positions(positions, numbers)
        self.check_finite(x)
        cells, periodic = self.flat_cells(cell, pbc, x.shape[0])
        energies = np.empty(x.shape[0])
        gradients = np.empty(x.shape)
        w = np.empty((x.shape[0], 3, 3))
        for begin in range(0, x.shape[0], chunk_frames):
            chunk = torch.as_tensor(x[begin:begin + chunk_frames], dtype=self.dtype, device=self.device)
            end = begin + len(chunk)
            where = None if cells is None else (torch.tensor(cells[begin:end]), torch.tensor(periodic[begin:end]))
            energy, gradient, virial = self.model_call(chunk, numbers if numbers is not None else self.numbers, where)
            energies[begin:end] = energy.double().cpu().numpy()
            gradients[begin:end] = gradient.double().cpu().numpy()
            if virials:
                w[begin:end] = virial.double().cpu().numpy()
        forces = -gradients.reshape(x.shape[0], -1, 3)
        return (energies, forces, w) if virials else (energies, forces)

    def model_call(self, chunk, numbers, where=None):
        """The module's energies, gradients and virials (None where the module has none) of a chunk of frames: an
        atom-centred one's with the atoms' numbers and `where`, its cells and pbc (None: no cell), by autograd; the
        others' gradient is written out, so they run under torch.no_grad()."""
        if self.takes_cells:
            z = torch.as_tensor(np.asarray(numbers, dtype=np.int64))
            cell, pbc = where if where is not None else (None, None)
            energy, gradient, virial = self.model.energy_gradient_virial(chunk, z, cell, pbc)
            return energy, gradient.detach(), virial.detach()
        if self.elements is not None:
            z = torch.as_tensor(np.asarray(numbers, dtype=np.int64))
            with torch.no_grad():
                energy = self.model.forward(chunk, z)
            return energy, self.model.gradient(chunk, z).detach(), None
        with torch.no_grad():
            return self.model.forward(chunk), self.model.gradient(chunk), None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)  # sets self.atoms
        self.check_atoms(self.atoms)
        positions = self.atoms.get_positions()[np.newaxis]
        self.check_finite(positions.reshape(1, -1), frames=False)
        if not self.takes_cells:
            numbers = list(self.atoms.numbers) if self.elements is not None else None
            energies, forces = self.evaluate(positions, numbers=numbers)
        else:  # the cell only where a direction is periodic: without, the atoms are a molecule wherever they are
            cell, pbc = (self.atoms.cell.array, self.atoms.pbc) if self.atoms.pbc.any() else (None, None)
            self.flat_cells(cell, pbc, 1, named=False)  # a flat cell named without "frame 0"
            energies, forces, virials = self.evaluate(positions, numbers=list(self.atoms.numbers), cell=cell, pbc=pbc,
                                                      virials=True)
            self.store_stress(virials[0], "stress" in properties)
        self.results["energy"] = self.results["free_energy"] = float(energies[0])
        self.results["forces"] = forces[0]

    def store_stress(self, virial, asked):
        """results["stress"] = W / V (W's symmetric part, Voigt order) where the cell has a volume V; where it has
        none, a PropertyNotImplementedError when the stress was asked for."""
        volume = abs(float(np.linalg.det(self.atoms.cell.array)))
        if volume > 0:
            s = (virial + virial.T) / (2 * volume)  # ASE's numerical stress strains by symmetric eps
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        elif asked:
            raise PropertyNotImplementedError(
                f"{self.name_in_errors}: the stress is W / volume, and these atoms' cell has no volume "
                f"(pbc {pbc_text(self.atoms.pbc)}, lengths {' '.join(f'{v:g}' for v in self.atoms.cell.lengths())})")


def model_summary(path):
    """One line about an exported model: run, architecture, dtype and the atoms it expects."""
    calculator = GradfitCalculator(path)
    model = calculator.model
    cells = ", in a periodic cell or not" if calculator.takes_cells else ", without a periodic cell"
    atoms = (f"any structure of {', '.join(chemical_symbols[e] for e in calculator.elements)}{cells} (its training "
             f"data's numbers: {describe(calculator.numbers)})" if calculator.elements is not None
             else describe(calculator.numbers) if calculator.numbers is not None
             else f"any {calculator.inputs // 3} atoms (no numbers recorded)" if calculator.inputs else "unknown atoms")
    return (f"{path}: run {getattr(model, 'run_name', '?')} ({getattr(model, 'run_id', '?')}), "
            f"{getattr(model, 'architecture', '?')}, {getattr(model, 'activation', '?')}, "
            f"{getattr(model, 'dtype', '?')}; {atoms}")


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return
    for path in sys.argv[1:]:
        try:
            print(model_summary(path))
        except ValueError as error:  # GradfitCalculator's: one line that names the file and what is wrong
            sys.exit(f"ase_calculator.py: {error}")
        except (RuntimeError, OSError) as error:  # anything else torch may raise, as one line
            sys.exit(f"ase_calculator.py: {path}: cannot load it ({short_reason(error)})")


if __name__ == "__main__":
    main()
