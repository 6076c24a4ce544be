"""Checks the shape of src/: every folder includes only folders below it in the layering that docs/architecture.md
states (Source tree), and no function is longer than a limit (universal-ctags end lines). Prints each finding; exit 1
on any.
Usage: check_structure.py SRC_DIR [CTAGS] [MAX_LINES]"""
import os
import re
import subprocess
import sys

# Lowest first: a folder may include itself and the folders before it in this list.
LAYERS = ["common", "config", "parallel", "device", "records", "model", "io", "data", "train", "inference", "sweep"]
# Folders of one layer, which must not include each other.
SAME_LAYER = [{"parallel", "device", "records", "model"}]

src = sys.argv[1]
ctags = sys.argv[2] if len(sys.argv) > 2 else "ctags"
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 100
findings = []


def rank(folder):
    for group in SAME_LAYER:
        if folder in group:
            return min(LAYERS.index(f) for f in group)
    return LAYERS.index(folder)


folders = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
for folder in folders:
    if folder not in LAYERS:
        findings.append(f"folder src/{folder} is not in the layering (add it to docs/architecture.md and to LAYERS)")
        continue
    for root, _, files in os.walk(os.path.join(src, folder)):
        for name in files:
            if not name.endswith((".h", ".cpp")):
                continue
            path = os.path.join(root, name)
            for m in re.finditer(r'#include\s+"([^"/]+)/', open(path, errors="replace").read()):
                other = m.group(1)
                if other == folder or other not in LAYERS:
                    continue
                if rank(other) >= rank(folder):
                    findings.append(f"{os.path.relpath(path, src)} includes {other}/, which is not below {folder}/")

out = subprocess.run([ctags, "-R", "--fields=+ne", "--kinds-c++=f", "-x", "--_xformat=%{end} %{line} %N %F", src],
                     capture_output=True, text=True, check=True).stdout
functions = 0
for line in out.splitlines():
    p = line.split()
    if len(p) >= 4 and p[0].isdigit() and p[1].isdigit():
        functions += 1
        length = int(p[0]) - int(p[1]) + 1
        if length > limit:
            findings.append(f"function {p[2]} ({os.path.relpath(p[3], src)}) has {length} lines, over {limit}")
if functions == 0:
    findings.append(f"{ctags} found no functions in {src}: is it universal-ctags?")

for f in findings:
    print(f)
print(f"{len(folders)} folders, {functions} functions checked: {len(findings)} finding(s)")
sys.exit(1 if findings else 0)
