#!/usr/bin/env python3
"""Turns files that ASE reads (extended XYZ with energies and forces, ASE .traj, ASE db, VASP OUTCAR, ...) into a
data file for gradfit_dist: the positions as x, the negative forces as the gradient samples grad = dE/dx.

Usage: ase_import.py FILE... --out DATA.h5 [--index SLICE] [--format FMT] [--layout auto] [--overwrite]

  FILE...      read in order, each with ase.io.iread(FILE, index=SLICE, format=FMT), frame by frame
  --index      the frames of each file, as ASE writes them: ":" (all, the default), "::10", "100:200", "-1"
  --format     ASE's format name, where ASE cannot tell it from the file (e.g. extxyz, traj, vasp-out, db)
  --layout     auto (the default): the fixed layout while every frame has the first frame's atoms and no periodic
               cell, else the frames layout; fixed: the fixed layout or an error; frames: the frames layout always
  --overwrite  replace DATA.h5 if it exists (without it, an existing DATA.h5 is an error and stays as it is); never
               an input: --out naming one of the FILEs (the same path, or the same file by a link) is an error

Writes DATA.h5 in the fixed layout (N frames of the same a atoms, what gradfit_dist trains on):
  x      N × 3a  positions, atom-major rows (x1, y1, z1, x2, ...), Å
  grad   N × 3a  the negative forces, eV/Å: exactly the source's forces with the sign flipped
  value  N       the potential energy, eV; only when the first frame has one (then every frame must)
  attributes numbers (atomic numbers), units, source (the files and index) and frames (N)
or in the frames layout (attribute layout = "frames": N frames of any atoms, with or without a periodic cell; A the
atoms of all frames; gradfit_dist reads the layout in a later version, docs/config.md says which):
  positions  A × 3  every frame's atoms, frame after frame, Å
  grad       A × 3  the negative forces, eV/Å
  numbers    A      atomic numbers
  atoms      N      each frame's atom count: frame f's atoms follow those of the frames before it
  value      N      the potential energy, eV (as above)
  cell       N × 9  the lattice vectors a, b, c, row after row, Å; zeros for a frame without a periodic cell
  pbc        N × 3  1 where the frame is periodic along a, b, c (int8)
  attributes layout, units, source and frames (N)
Every frame is checked before it is written; each of these is an error:
  - no forces (every frame needs them), or an energy missing where the first frame has one;
  - positions, forces or the energy not finite (NaN or Inf);
  - a coordinate beyond ±1e6 Å (MAX_COORDINATE, the bound gradfit_dist's training applies too), which no physical
    structure reaches;
  - two atoms at the same place (all three coordinates equal: distance 0, what training refuses with inverse
    distances); in a periodic frame, at the same place modulo the cell (fractional coordinates equal to 1e-9);
  - an atomic number outside 1 to 118 (ASE's dummy atom X is 0); a frame without atoms;
  - a periodic cell whose periodic lattice vectors span no volume (a zero vector, two along one line, ...);
  - with --layout fixed: atoms other than the first frame's (their count, or the species in order), or a periodic
    cell (VASP's cells always are).
ASE's stored results are read as they are: no calculator is run.

The frames stream through in blocks, so a file of 10^6 frames need not fit in memory. DATA.h5 appears whole or not
at all: it is written to a temporary beside it and renamed at the end; an error is one line naming the file and the
frame, and leaves no file behind. The inputs are only read: --out is never one of them, with or without --overwrite.
Needs ASE, numpy and h5py (Debian: python3-ase python3-h5py; /usr/bin/python3).
"""
import argparse
import os
import sys

from tool_files import same_file  # scripts/, beside this file

try:
    import numpy as np
except ImportError:
    sys.exit("ase_import.py: numpy is missing: install python3-numpy and run this with /usr/bin/python3")
try:
    import ase.io
    from ase.data import chemical_symbols
    from ase.io.formats import string2index
except ImportError:
    sys.exit("ase_import.py: ASE is missing: install python3-ase and run this with /usr/bin/python3")
try:
    import h5py
except ImportError:
    sys.exit("ase_import.py: h5py is missing: install python3-h5py and run this with /usr/bin/python3")

BLOCK_FRAMES = 4096  # frames held in memory between two appends to the datasets
CHUNK_BYTES = 1 << 19  # HDF5 chunks of about 512 KiB: within h5py's default 1 MiB chunk cache
UNITS = "x: Angstrom, grad: eV/Angstrom (dE/dx, the negative forces), value: eV"  # as experiments/molecule writes
FRAMES_UNITS = "positions, cell: Angstrom, grad: eV/Angstrom (dE/dx, the negative forces), value: eV"
NO_FORCES = "ase_import.py needs forces in every frame: the gradient samples are their negatives"
MAX_COORDINATE = 1e6  # Å: |coordinate| above it is an error, as in gradfit_dist's training on data with atoms
MAX_ATOMIC_NUMBER = 118  # the elements; ASE's dummy atom X is 0


class ImportFailure(Exception):
    """One line for the user: what is wrong, naming the file and the frame."""


class Frame:
    """Where a frame came from, for error lines: the file, its index among what iread yields, the global index."""

    def __init__(self, path, index, overall, selection):
        self.path, self.index, self.overall, self.selection = path, index, overall, selection

    def __str__(self):
        return f"{self.path}: frame {self.index}"

    def error(self, text):
        """The ImportFailure 'FILE: frame K: text', and after it what else helps find the frame."""
        notes = []
        if self.overall != self.index:
            notes.append(f"frame {self.overall} of all the input")
        if self.selection != ":":  # K counts the frames --index selects, not the file's own frames
            notes.append(f"frames numbered among those --index {self.selection} selects")
        return ImportFailure("; ".join([f"{self}: {text}"] + notes))


class Reference:
    """The first frame: what every later frame must match, and whether the frames carry energies."""

    def __init__(self, frame, atoms, has_energy):
        self.frame, self.numbers, self.has_energy = frame, atoms.numbers.copy(), has_energy
        self.formula = atoms.get_chemical_formula()

    def __str__(self):
        return f"the first frame ({self.frame.path}, frame 0)"


def one_line(error):
    """An exception as one line with its type, for ASE's errors (some multi-line, some with an empty message)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def read_frames(path, selection, fmt):
    """(index within the file, Atoms) for each frame iread yields; ASE's errors become one line naming the file."""
    # The path is a path: 'name@3' is not ASE's shorthand for an index here (--index is). iread is a generator:
    # the file is opened and read in the next() calls below, where its errors are caught.
    frames = ase.io.iread(path, index=selection, format=fmt, do_not_split_by_at_sign=True)
    index = 0
    while True:
        try:
            atoms = next(frames)
        except StopIteration:
            return
        except Exception as error:  # ASE's readers raise anything from ValueError to AssertionError
            where = f"{path}: frame {index}: cannot read it" if index else f"{path}: cannot read it"
            hint = ""
            if isinstance(error, AssertionError) and selection != ":":  # e.g. the db and single-frame readers
                hint = f"; the reader may not take --index {selection} (a step, or frames after the first)"
            raise ImportFailure(f"{where}{' as ' + fmt if fmt else ''} ({one_line(error)}){hint}") from error
        yield index, atoms
        index += 1


def stored_result(atoms, name):
    """A result stored with the frame (a SinglePointCalculator's, or an array the reader kept), or None.
    Never get_forces(): on a frame with a live calculator that would run a calculation."""
    results = getattr(atoms.calc, "results", None) or {}
    if results.get(name) is not None:
        return np.asarray(results[name], dtype=np.float64)
    if name == "forces" and "forces" in atoms.arrays:
        return np.asarray(atoms.arrays["forces"], dtype=np.float64)
    return None


def pbc_text(pbc):
    """[True True False], not numpy's '[ True  True False]'."""
    return "[" + " ".join(str(bool(p)) for p in pbc) + "]"


def check_elements(frame, numbers):
    """Every atomic number an element's, 1 to 118: not ASE's dummy atom X (0), nor a number past the table."""
    wrong = np.flatnonzero((numbers < 1) | (numbers > MAX_ATOMIC_NUMBER))
    if wrong.size:
        i = wrong[0]
        known = f" ({chemical_symbols[numbers[i]]})" if 0 <= numbers[i] < len(chemical_symbols) else ""
        raise frame.error(f"atom {i} has atomic number {numbers[i]}{known}: not an element (1 to {MAX_ATOMIC_NUMBER})")


def same_atoms_error(frame, atoms, reference):
    """The error of a frame that the fixed layout cannot take (a periodic cell, other atoms than the first frame's),
    or None."""
    if atoms.pbc.any():
        return frame.error(f"periodic cell (pbc {pbc_text(atoms.pbc)}): the fixed layout has no cells (--layout "
                           "frames or auto takes them)")
    if reference is None:
        return None
    if len(atoms) != len(reference.numbers):
        return frame.error(f"{len(atoms)} atoms ({atoms.get_chemical_formula()}), but {reference} has "
                           f"{len(reference.numbers)} ({reference.formula}) (--layout frames or auto takes frames "
                           "of any atoms)")
    differ = np.flatnonzero(atoms.numbers != reference.numbers)
    if differ.size:
        i = differ[0]
        return frame.error(f"atom {i} is {atoms.get_chemical_symbols()[i]}, but in {reference} it is "
                           f"{chemical_symbols[reference.numbers[i]]} (the fixed layout needs the same atoms in the "
                           f"same order; {differ.size} atoms differ; --layout frames or auto takes any)")
    return None


def check_atoms(frame, atoms):
    """The frame's atoms: some, elements only; with a periodic cell, periodic lattice vectors that span a volume."""
    if len(atoms) == 0:
        raise frame.error("no atoms")
    check_elements(frame, atoms.numbers)
    check_cell(frame, atoms)


def check_cell(frame, atoms):
    """A periodic frame's lattice vectors along its periodic directions: independent (they span a line, a plane or
    a volume)."""
    periodic = np.asarray(atoms.cell.array)[np.asarray(atoms.pbc, dtype=bool)]
    if len(periodic) and np.linalg.matrix_rank(periodic, tol=1e-9 * max(1.0, np.abs(periodic).max())) < len(periodic):
        raise frame.error(f"periodic cell (pbc {pbc_text(atoms.pbc)}) whose periodic lattice vectors span no volume "
                          f"(cell {np.round(atoms.cell.array, 6).tolist()})")


def check_finite(frame, name, rows):
    """Positions or forces (a × 3) without NaN or Inf."""
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
    if bad.size:
        raise frame.error(f"{name} hold NaN or Inf (atom {bad[0]})")


def check_energy(frame, energy):
    """A finite energy, where the frames have one."""
    if energy is not None and not np.isfinite(energy):
        raise frame.error(f"energy is {'NaN' if np.isnan(energy) else energy}")


def check_coordinates(frame, positions):
    """Every coordinate (finite, checked before) within ±MAX_COORDINATE Å."""
    beyond = np.flatnonzero((np.abs(positions) > MAX_COORDINATE).any(axis=1))
    if beyond.size:
        i = beyond[0]
        value = positions[i][np.abs(positions[i]) > MAX_COORDINATE][0]
        raise frame.error(f"atom {i} has a coordinate of {value:g} Å: beyond ±1e6 Å, which no physical structure "
                          "reaches")


def same_place(rows):
    """The lowest pair (i, j), i < j, of equal rows (all three coordinates equal: distance 0), or None. Sorting the
    rows puts equal ones side by side, O(a log a); the pair is the lowest atom with a twin, and its lowest twin."""
    if len(rows) < 2:
        return None
    order = np.lexsort(rows.T[::-1])  # stable: equal rows keep their order, so each pair is (lower, higher)
    ordered = rows[order]
    same = np.flatnonzero((ordered[1:] == ordered[:-1]).all(axis=1))  # -0.0 == 0.0: distance 0 as well
    if not same.size:
        return None
    first, second = order[same], order[same + 1]
    k = np.lexsort((second, first))[0]
    return first[k], second[k]


def check_distinct(frame, positions):
    """No two atoms at the same place."""
    pair = same_place(positions)
    if pair is not None:
        raise frame.error(f"atoms {pair[0]} and {pair[1]} are at the same place")


def check_distinct_periodic(frame, atoms, positions):
    """No two atoms at the same place modulo the periodic lattice (fractional coordinates equal to 1e-9 along the
    periodic directions once wrapped into the cell, equal Cartesian ones along the others)."""
    periodic = np.asarray(atoms.pbc, dtype=bool)
    fractional = np.linalg.solve(complete_cell(atoms).T, positions.T).T
    fractional[:, periodic] = np.round(np.mod(fractional[:, periodic], 1.0), 9) % 1.0
    pair = same_place(fractional)
    if pair is not None:
        raise frame.error(f"atoms {pair[0]} and {pair[1]} are at the same place, modulo the periodic cell")


def complete_cell(atoms):
    """The cell with its non-periodic directions' vectors replaced by unit vectors orthogonal to the periodic ones
    (ASE writes zeros there), so that it can be inverted."""
    cell = np.array(atoms.cell.array, dtype=np.float64)
    periodic = np.asarray(atoms.pbc, dtype=bool)
    basis = cell[periodic]
    for k in np.flatnonzero(~periodic):
        _, _, vt = np.linalg.svd(np.vstack([basis, np.zeros((3 - len(basis), 3))]))
        cell[k] = vt[-1]
        basis = np.vstack([basis, vt[-1]])
    return cell


class Record:
    """One frame, checked: positions and the negative forces (a × 3), its energy (None without), atomic numbers,
    cell (3 × 3) and periodic flags."""

    def __init__(self, frame, atoms, reference):
        forces = stored_result(atoms, "forces")
        if forces is None:
            raise frame.error(f"no forces ({NO_FORCES})")
        if forces.shape != (len(atoms), 3):
            raise frame.error(f"forces of shape {forces.shape} for {len(atoms)} atoms")
        energy = stored_result(atoms, "energy")
        if reference.has_energy and energy is None:
            raise frame.error(f"no energy, but {reference} has one (value needs one in every frame or none)")
        self.energy = float(energy) if reference.has_energy else None
        self.positions = np.asarray(atoms.get_positions(), dtype=np.float64)
        check_finite(frame, "positions", self.positions)  # NaN and Inf first: the checks after compare numbers
        check_finite(frame, "forces", forces)
        check_energy(frame, self.energy)
        check_coordinates(frame, self.positions)
        if atoms.pbc.any():
            check_distinct_periodic(frame, atoms, self.positions)
        else:
            check_distinct(frame, self.positions)
        self.grad = -forces
        self.numbers = np.asarray(atoms.numbers, dtype=np.int64)
        self.cell = np.asarray(atoms.cell.array, dtype=np.float64) if atoms.pbc.any() else np.zeros((3, 3))
        self.pbc = np.asarray(atoms.pbc, dtype=np.int8)


def growing(f, name, width, dtype, rows):
    """A dataset of 0 rows of `width` columns (none: 1-D) that grows along its first axis, in chunks of `rows`."""
    shape = (0, width) if width else (0,)
    return f.create_dataset(name, shape, dtype, maxshape=(None,) + shape[1:], chunks=(rows,) + shape[1:])


def extend(dataset, rows):
    begin = dataset.shape[0]
    dataset.resize(begin + len(rows), axis=0)
    dataset[begin:] = rows


class FixedOutput:
    """The fixed layout's datasets (N frames of the same a atoms: x and grad N × 3a, value N), grown block by
    block."""

    def __init__(self, f, width, has_value):
        rows = max(1, CHUNK_BYTES // (8 * width))
        self.x = growing(f, "x", width, np.float64, rows)
        self.grad = growing(f, "grad", width, np.float64, rows)
        self.value = growing(f, "value", 0, np.float64, rows * width) if has_value else None
        self.frames = 0

    def append(self, records):
        """Writes the records after those already written, and empties the list."""
        if not records:
            return
        extend(self.x, np.array([r.positions.reshape(-1) for r in records]))
        extend(self.grad, np.array([r.grad.reshape(-1) for r in records]))
        if self.value is not None:
            extend(self.value, np.array([r.energy for r in records]))
        self.frames += len(records)
        records.clear()


class FramesOutput:
    """The frames layout's datasets (every frame's atoms concatenated), grown block by block."""

    def __init__(self, f, has_value):
        rows = CHUNK_BYTES // 24
        self.positions = growing(f, "positions", 3, np.float64, rows)
        self.grad = growing(f, "frames_grad", 3, np.float64, rows)  # named grad at the end (see finish)
        self.numbers = growing(f, "numbers", 0, np.int64, rows)
        self.atoms = growing(f, "atoms", 0, np.int64, rows)
        self.value = growing(f, "frames_value", 0, np.float64, rows) if has_value else None
        self.cell = growing(f, "cell", 9, np.float64, rows // 3)
        self.pbc = growing(f, "pbc", 3, np.int8, rows)
        self.frames, self.periodic, self.sizes = 0, 0, set()

    def append(self, records):
        if not records:
            return
        extend(self.positions, np.concatenate([r.positions for r in records]))
        extend(self.grad, np.concatenate([r.grad for r in records]))
        extend(self.numbers, np.concatenate([r.numbers for r in records]))
        extend(self.atoms, np.array([len(r.numbers) for r in records], dtype=np.int64))
        if self.value is not None:
            extend(self.value, np.array([r.energy for r in records]))
        extend(self.cell, np.array([r.cell.reshape(-1) for r in records]))
        extend(self.pbc, np.array([r.pbc for r in records], dtype=np.int8))
        self.frames += len(records)
        self.periodic += sum(1 for r in records if r.pbc.any())
        self.sizes.update(len(r.numbers) for r in records)
        records.clear()

    def take_fixed(self, f, fixed, reference, block_frames):
        """Copies the fixed layout's rows written so far into these datasets, block by block, and removes them."""
        a = len(reference.numbers)
        for begin in range(0, fixed.frames, block_frames):
            end = min(begin + block_frames, fixed.frames)
            extend(self.positions, fixed.x[begin:end].reshape(-1, 3))
            extend(self.grad, fixed.grad[begin:end].reshape(-1, 3))
            extend(self.numbers, np.tile(np.asarray(reference.numbers, dtype=np.int64), end - begin))
            extend(self.atoms, np.full(end - begin, a, dtype=np.int64))
            if self.value is not None:
                extend(self.value, fixed.value[begin:end])
            extend(self.cell, np.zeros((end - begin, 9)))
            extend(self.pbc, np.zeros((end - begin, 3), dtype=np.int8))
        self.frames, self.sizes = fixed.frames, {a} if fixed.frames else set()
        for name in ("x", "grad", "value"):
            if name in f:
                del f[name]

    def finish(self, f):
        f.move("frames_grad", "grad")
        if self.value is not None:
            f.move("frames_value", "value")


def write_frames(f, paths, selection, fmt, block_frames, layout):
    """Streams every file's frames into f in the layout asked for (auto: the fixed one until a frame that it cannot
    take, then the frames layout, the rows written so far moved into it); returns the reference (the first frame)
    and the output."""
    reference, output, overall = None, None, 0
    records = []
    for path in paths:
        count = 0
        for index, atoms in read_frames(path, selection, fmt):
            frame = Frame(path, index, overall, selection)
            check_atoms(frame, atoms)
            if reference is None:
                reference = Reference(frame, atoms, stored_result(atoms, "energy") is not None)
                output = (FramesOutput(f, reference.has_energy) if layout == "frames"
                          else FixedOutput(f, 3 * len(atoms), reference.has_energy))
            if isinstance(output, FixedOutput):
                error = same_atoms_error(frame, atoms, reference)
                if error is not None and layout == "fixed":
                    raise error
                if error is not None:
                    output.append(records)
                    frames = FramesOutput(f, reference.has_energy)
                    frames.take_fixed(f, output, reference, block_frames)
                    output = frames
            records.append(Record(frame, atoms, reference))
            if len(records) >= block_frames:
                output.append(records)
            count, overall = count + 1, overall + 1
        if count == 0:  # a wrong --index or an empty file: almost surely not what was meant
            raise ImportFailure(f"{path}: no frames" + (f" with --index {selection}" if selection != ":" else ""))
    output.append(records)
    if isinstance(output, FramesOutput):
        output.finish(f)
    return reference, output


def write_attributes(f, reference, output, paths, selection, fmt):
    if isinstance(output, FramesOutput):
        f.attrs["layout"] = "frames"
        f.attrs["units"] = FRAMES_UNITS
    else:
        f.attrs["numbers"] = np.asarray(reference.numbers, dtype=np.int64)
        f.attrs["units"] = UNITS
    f.attrs["source"] = (f"ASE import of {', '.join(paths)} (--index {selection}"
                         + (f", --format {fmt}" if fmt else "") + ")")
    f.attrs["frames"] = output.frames


def synced(path):
    """Flushes the closed file to disk, so that the rename cannot outlive its contents in a crash."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def import_files(args):
    """Writes args.out via a temporary beside it; returns the summary line. Removes the temporary on any error."""
    temporary = f"{args.out}.tmp-{os.getpid()}"
    renamed = False
    try:
        with h5py.File(temporary, "w") as f:
            reference, output = write_frames(f, args.files, args.index, args.format, args.block, args.layout)
            write_attributes(f, reference, output, args.files, args.index, args.format)
        synced(temporary)
        os.replace(temporary, args.out)
        renamed = True
    except OSError as error:  # a full disk, a vanished folder: ASE's read errors were made lines in read_frames
        raise ImportFailure(f"cannot write {args.out} ({one_line(error)})") from error
    finally:
        if not renamed and os.path.exists(temporary):
            os.remove(temporary)
    if isinstance(output, FramesOutput):
        sizes = sorted(output.sizes)
        atoms = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}"
        line = (f"wrote {args.out}: {output.frames} frames of {atoms} atoms ({output.periodic} periodic), the frames "
                f"layout, from {', '.join(args.files)}")
    else:
        line = (f"wrote {args.out}: {output.frames} frames of {len(reference.numbers)} atoms ({reference.formula}) "
                f"from {', '.join(args.files)}")
    return line + ("" if reference.has_energy else " (no value dataset: the first frame has no energy)")


def check_arguments(args):
    """The errors found before reading anything: a missing input, --out naming an input, an existing output, a
    malformed --index."""
    if args.block < 1:
        raise ImportFailure(f"--block must be at least 1, got {args.block}")
    try:
        string2index(args.index)
    except (ValueError, TypeError):
        raise ImportFailure(f"--index {args.index}: not an index or a slice like ':', '::10', '100:200' or '-1'")
    for path in args.files:
        if not os.path.exists(path):
            raise ImportFailure(f"{path}: no such file")
    for path in args.files:  # before the check of an existing --out: --overwrite must not look like the way out
        if same_file(args.out, path):
            raise ImportFailure(f"--out {args.out} is the input {path}: the import never writes over its input "
                                "(--overwrite replaces an earlier output only)")
    if os.path.exists(args.out) and not args.overwrite:
        raise ImportFailure(f"{args.out} exists: give --overwrite to replace it")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--out", required=True, metavar="DATA.h5")
    parser.add_argument("--index", default=":", metavar="SLICE")
    parser.add_argument("--format", default=None, metavar="FMT")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--layout", choices=("auto", "fixed", "frames"), default="auto")
    parser.add_argument("--block", type=int, default=BLOCK_FRAMES, help=argparse.SUPPRESS)  # tests: tiny blocks
    args = parser.parse_args()
    try:
        check_arguments(args)
        print(import_files(args))
    except ImportFailure as failure:
        sys.exit(f"ase_import.py: {failure}")


if __name__ == "__main__":
    main()
