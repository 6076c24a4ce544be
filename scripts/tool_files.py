"""What the Python tools share about files: whether an output would write over an input, HDF5's signature, and an
exception as one short line for an error message. Imported by scripts/ase_import.py, ase_calculator.py, analyze.py
and the examples' scripts (from scripts/, which is first on sys.path when one of them runs)."""
import os
import re

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def same_file(a, b):
    """Whether the paths a and b name one file: the same resolved path (symbolic links, '..'), or, when both exist,
    the same file by another name (a hard link, a bind mount). Every tool checks its outputs against its inputs
    with it, so that none writes over a file it reads."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def starts_as_hdf5(path):
    """Whether the file at path begins with HDF5's signature (False when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except OSError:
        return False


def short_reason(error):
    """An exception's text as one short line: its first line, without torch's '[enforce fail at file:line] ', at
    most 200 characters."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    text = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", lines[0].strip())
    return text[:200] + ("..." if len(text) > 200 else "")
