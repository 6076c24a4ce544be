#!/usr/bin/env python3
"""Turns files that ASE reads (extended XYZ with energies and forces, ASE .traj, ASE db, VASP OUTCAR, ...) into a
data file for gradfit_dist: the positions as x, the negative forces as the gradient samples grad = dE/dx.

Usage: ase_import.py FILE... --out DATA.h5 [--index SLICE] [--format FMT] [--overwrite]

  FILE...      read in order, each with ase.io.iread(FILE, index=SLICE, format=FMT), frame by frame
  --index      the frames of each file, as ASE writes them: ":" (all, the default), "::10", "100:200", "-1"
  --format     ASE's format name, where ASE cannot tell it from the file (e.g. extxyz, traj, vasp-out, db)
  --overwrite  replace DATA.h5 if it exists (without it, an existing DATA.h5 is an error and stays as it is); never
               an input: --out naming one of the FILEs (the same path, or the same file by a link) is an error

Writes DATA.h5 (N frames of a atoms):
  x      N × 3a  positions, atom-major rows (x1, y1, z1, x2, ...), Å
  grad   N × 3a  the negative forces, eV/Å: exactly the source's forces with the sign flipped
  value  N       the potential energy, eV; only when the first frame has one (then every frame must)
  attributes numbers (atomic numbers), units, source (the files and index) and frames (N)
Every frame is checked before it is written; each of these is an error:
  - no forces (every frame needs them), or an energy missing where the first frame has one;
  - positions, forces or the energy not finite (NaN or Inf);
  - a coordinate beyond ±1e6 Å (MAX_COORDINATE, the bound gradfit_dist's training applies too), which no physical
    structure reaches;
  - two atoms at the same place (all three coordinates equal: distance 0, what training refuses with inverse
    distances);
  - an atomic number outside 1 to 118 (ASE's dummy atom X is 0);
  - atoms other than the first frame's (their count, or the species in order), or a periodic cell (periodic systems
    are not supported yet; VASP's cells always are).
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


def check_atoms(frame, atoms, reference):
    """The frame's atoms: no periodic cell, elements only, and the first frame's count and species in order."""
    if atoms.pbc.any():
        raise frame.error(f"periodic cell (pbc {pbc_text(atoms.pbc)}): periodic systems are not supported yet")
    if reference is None and len(atoms) == 0:
        raise frame.error("no atoms")
    check_elements(frame, atoms.numbers)  # every frame's: the lines below name the species by their symbols
    if reference is None:
        return
    if len(atoms) != len(reference.numbers):
        raise frame.error(f"{len(atoms)} atoms ({atoms.get_chemical_formula()}), but {reference} has "
                          f"{len(reference.numbers)} ({reference.formula})")
    differ = np.flatnonzero(atoms.numbers != reference.numbers)
    if differ.size:
        i = differ[0]
        raise frame.error(f"atom {i} is {atoms.get_chemical_symbols()[i]}, but in {reference} it is "
                          f"{chemical_symbols[reference.numbers[i]]} (every frame needs the same atoms in the same "
                          f"order; {differ.size} atoms differ)")


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


def check_distinct(frame, positions):
    """No two atoms at the same place (all three coordinates equal: distance 0). Sorting the rows puts equal ones
    side by side, O(a log a); the pair named is the lowest: the lowest atom with a twin, and its lowest twin."""
    if len(positions) < 2:
        return
    order = np.lexsort(positions.T[::-1])  # stable: equal rows keep their order, so each pair is (lower, higher)
    rows = positions[order]
    same = np.flatnonzero((rows[1:] == rows[:-1]).all(axis=1))  # -0.0 == 0.0: distance 0 as well
    if same.size:
        first, second = order[same], order[same + 1]
        k = np.lexsort((second, first))[0]
        raise frame.error(f"atoms {first[k]} and {second[k]} are at the same place")


def frame_rows(frame, atoms, reference):
    """The frame's x and grad rows (3a each) and its energy (None when the reference has none), checked: forces
    (and an energy where the first frame has one) present, finite values, coordinates in bounds, distinct atoms."""
    forces = stored_result(atoms, "forces")
    if forces is None:
        raise frame.error(f"no forces ({NO_FORCES})")
    if forces.shape != (len(atoms), 3):
        raise frame.error(f"forces of shape {forces.shape} for {len(atoms)} atoms")
    energy = stored_result(atoms, "energy")
    if reference.has_energy and energy is None:
        raise frame.error(f"no energy, but {reference} has one (value needs one in every frame or none)")
    energy = float(energy) if reference.has_energy else None
    positions = np.asarray(atoms.get_positions(), dtype=np.float64)
    check_finite(frame, "positions", positions)  # NaN and Inf first: the checks after them compare numbers
    check_finite(frame, "forces", forces)
    check_energy(frame, energy)
    check_coordinates(frame, positions)
    check_distinct(frame, positions)
    return positions.reshape(-1), -forces.reshape(-1), energy


class Output:
    """The datasets of the temporary file, grown block by block."""

    def __init__(self, f, width, has_value):
        rows = max(1, CHUNK_BYTES // (8 * width))
        self.x = f.create_dataset("x", (0, width), np.float64, maxshape=(None, width), chunks=(rows, width))
        self.grad = f.create_dataset("grad", (0, width), np.float64, maxshape=(None, width), chunks=(rows, width))
        self.value = (f.create_dataset("value", (0,), np.float64, maxshape=(None,), chunks=(rows * width,))
                      if has_value else None)
        self.frames = 0

    def append(self, block):
        """Writes the block's rows (lists of x, grad, energy) after those already written, and empties it."""
        x, grad, energy = block
        if not x:
            return
        begin, end = self.frames, self.frames + len(x)
        pairs = [(self.x, x), (self.grad, grad)] + ([(self.value, energy)] if self.value is not None else [])
        for dataset, rows in pairs:
            dataset.resize(end, axis=0)
            dataset[begin:end] = np.array(rows, dtype=np.float64)
        self.frames = end
        for rows in block:
            rows.clear()


def write_frames(f, paths, selection, fmt, block_frames):
    """Streams every file's frames into f; returns the reference (the first frame) and the frame count."""
    reference, output, overall = None, None, 0
    block = ([], [], [])
    for path in paths:
        count = 0
        for index, atoms in read_frames(path, selection, fmt):
            frame = Frame(path, index, overall, selection)
            check_atoms(frame, atoms, reference)
            if reference is None:
                reference = Reference(frame, atoms, stored_result(atoms, "energy") is not None)
                output = Output(f, 3 * len(atoms), reference.has_energy)
            for rows, row in zip(block, frame_rows(frame, atoms, reference)):
                rows.append(row)
            if len(block[0]) >= block_frames:
                output.append(block)
            count, overall = count + 1, overall + 1
        if count == 0:  # a wrong --index or an empty file: almost surely not what was meant
            raise ImportFailure(f"{path}: no frames" + (f" with --index {selection}" if selection != ":" else ""))
    output.append(block)
    return reference, output.frames


def write_attributes(f, reference, frames, paths, selection, fmt):
    f.attrs["numbers"] = np.asarray(reference.numbers, dtype=np.int64)
    f.attrs["units"] = UNITS
    f.attrs["source"] = (f"ASE import of {', '.join(paths)} (--index {selection}"
                         + (f", --format {fmt}" if fmt else "") + ")")
    f.attrs["frames"] = frames


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
            reference, frames = write_frames(f, args.files, args.index, args.format, args.block)
            write_attributes(f, reference, frames, args.files, args.index, args.format)
        synced(temporary)
        os.replace(temporary, args.out)
        renamed = True
    except OSError as error:  # a full disk, a vanished folder: ASE's read errors were made lines in read_frames
        raise ImportFailure(f"cannot write {args.out} ({one_line(error)})") from error
    finally:
        if not renamed and os.path.exists(temporary):
            os.remove(temporary)
    a = len(reference.numbers)
    line = f"wrote {args.out}: {frames} frames of {a} atoms ({reference.formula}) from {', '.join(args.files)}"
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
    parser.add_argument("--block", type=int, default=BLOCK_FRAMES, help=argparse.SUPPRESS)  # tests: tiny blocks
    args = parser.parse_args()
    try:
        check_arguments(args)
        print(import_files(args))
    except ImportFailure as failure:
        sys.exit(f"ase_import.py: {failure}")


if __name__ == "__main__":
    main()
