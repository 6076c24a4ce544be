#!/usr/bin/env python3
"""Checks of `gradfit_dist eval` on the frames layout (its predictions file: value per frame with the element
energies, grad dE/dx per atom, virial per frame, W_ab = dE/d(eps_ab) under the strain x -> (1 + eps) x of atoms and
cell together at eps = 0, 9 numbers row-major), from outside the C++.

Usage:
  check_frames_eval.py reference RESULTS.h5 DATA.h5 PRED.h5 [--run best|NAME] [--tol 1e-10]
  check_frames_eval.py variants DATA.h5 OUT_DIR [--seed 0] [--step 3e-5]
  check_frames_eval.py check OUT_DIR PRED_DATA.h5 PRED_MOVED.h5 PRED_SUPERCELL.h5 PRED_STRAINED.h5
                             [--tol 1e-12] [--stress-tol 1e-6]

reference: the run's model rebuilt in PyTorch, float64, from its saved weights (model/ "H.0.weight", ...) on
  tests/train/frames_reference.py's descriptor (the elements: those of the run's `numbers`); --run best is the run
  PRED.h5 was made with (its attribute run_name). Per frame E = V + sum_i b_{Z_i} (b: the run's element_energies),
  dE/dx by autograd, and W by autograd through a strain eps (3 x 3, zero): positions @ (I + eps)^T and
  cell @ (I + eps)^T (rows: lattice vectors), the images' shifts n.H computed from the strained cell, so that they
  depend on eps. Each of value, grad and virial must equal PRED.h5's to --tol relative to its largest magnitude.
variants: frames files like DATA.h5 (its datasets and attributes; `frames` the new count) in OUT_DIR, and
  variants.npz, what `check` needs:
    moved.h5      every frame turned by a rotation R_f of its own (atoms and cell together) and shifted by a constant
                  vector; in a frame with a periodic direction one atom first moves by a lattice vector (e.g. a - 2c,
                  along the periodic directions only); samples: grad turned, value as is;
    supercell.h5  every fully periodic frame as its 2 x 2 x 2 supercell (cell doubled; copy n = (i, j, k) after copy,
                  row-major, each the frame's atoms in order, shifted by n.H); samples: value times 8, grad repeated;
    strained.h5   every frame (molecules too: W is defined all the same), for each (a, b) of the 9 components, by
                  eps_ab = +h then -h (h = --step), positions and cell by (I + eps); samples: the frame's own.
check: eval's predictions on DATA.h5 and on the three variants (one run: the same run_id in all four):
  moved      E as DATA.h5's (relative to |E|), dE/dx turned back (R^T) as DATA.h5's (relative to the largest |dE/dx|),
             and R^T W R as W (relative to the frame's largest |W|): to --tol;
  supercell  E = 8 E (relative to |8 E|), dE/dx of each copy as the frame's, W = 8 W (relative to 8 max |W|): --tol;
  strained   (E(+h) - E(-h)) / 2h = W_ab of the frame, relative to the frame's largest |W|: --stress-tol.
Each prints its largest differences; the command exits 1 when one exceeds its tolerance.
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch

import frames_reference as fr
import pytorch_reference as pr


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def relative_to_largest(a, b):
    """max |a - b| / max |b| (0 where both are empty)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not b.size:
        return 0.0
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def verdict(label, worst, tol):
    """Prints one line about a largest difference; True when it is within tol (NaN is not)."""
    ok = bool(worst <= tol)
    print(f"{label}: largest difference {worst:.2e} ({'ok' if ok else 'FAIL'}, tolerance {tol:g})")
    return ok


class Predictions:
    """An eval predictions file of the frames layout: value (N), grad (atoms x 3), virial (N x 3 x 3), attributes."""

    def __init__(self, path):
        with h5py.File(path, "r") as f:
            self.attrs = {k: text(v) for k, v in f.attrs.items()}
            assert self.attrs.get("layout") == "frames", f"{path}: not eval's predictions on frames"
            self.value = np.asarray(f["value"][:], dtype=np.float64).reshape(-1)
            self.grad = np.asarray(f["grad"][:], dtype=np.float64).reshape(-1, 3)
            self.virial = np.asarray(f["virial"][:], dtype=np.float64).reshape(-1, 3, 3)
        self.path = path


# reference ----------------------------------------------------------------------------------------------------------

def rebuild(results, name):
    """The run `name` of RESULTS.h5 in PyTorch, float64, with its saved weights: (model, {Z: b_Z})."""
    from ase.data import chemical_symbols
    with h5py.File(results, "r") as f:
        g = f["runs"][name]
        attrs = {**pr.DEFAULTS, **dict(g.attrs)}
        saved = {k: np.asarray(g["model"][k][:], dtype=np.float64) for k in g["model"]}
    assert text(attrs["features"]) == "atom_centered", f"run '{name}': not atom_centered"
    elements = sorted(set(int(z) for z in attrs["numbers"]))
    model, _ = pr.build_model(attrs, elements=elements)
    model = model.double()
    used = set()
    with torch.no_grad():
        for z, network in zip(model.descriptor.elements, model.networks):
            linears = [m for m in network if isinstance(m, torch.nn.Linear)]
            for i, layer in enumerate(linears):
                for kind, tensor in (("weight", layer.weight), ("bias", layer.bias)):
                    key = f"{chemical_symbols[z]}.{i}.{kind}"
                    assert saved[key].shape == tuple(tensor.shape), (key, saved[key].shape, tuple(tensor.shape))
                    tensor.copy_(torch.from_numpy(saved[key]))
                    used.add(key)
    assert used == set(saved), f"run '{name}': weights the model does not take: {sorted(set(saved) - used)}"
    energies = np.asarray(attrs.get("element_energies", np.zeros(len(elements))), dtype=np.float64).reshape(-1)
    assert len(energies) == len(elements), "one element energy per element"
    return model, dict(zip(elements, energies.tolist()))


def frame_reference(model, energies, positions, numbers, cell, pbc):
    """One frame's E (with the element energies), dE/dx (a x 3) and W (3 x 3) by autograd, as described above."""
    descriptor = model.descriptor
    reach = max(descriptor.p["radial_cutoff"], descriptor.p["angular_cutoff"])
    topology = fr.Topology.join([descriptor.topology(positions, numbers, cell, pbc)])
    _, _, n = fr.images(positions, cell, pbc, reach)  # the same search, so the same pairs in the same order
    n = torch.from_numpy(n.astype(np.float64))
    assert torch.allclose(n @ torch.from_numpy(cell), topology.offsets, rtol=0, atol=1e-12)
    r0 = torch.from_numpy(positions).requires_grad_(True)
    eps = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    deform = torch.eye(3, dtype=torch.float64) + eps
    topology.offsets = n @ (torch.from_numpy(cell) @ deform.T)  # n.H' with H' the strained cell
    v = model(r0 @ deform.T, topology).sum()
    dvdx, w = torch.autograd.grad(v, [r0, eps])
    e = float(v) + sum(energies[int(z)] for z in numbers)
    return e, dvdx.numpy(), w.numpy()


def reference(args):
    pred = Predictions(args.pred)
    name = pred.attrs["run_name"] if args.run == "best" else args.run
    if name != pred.attrs["run_name"]:
        print(f"{args.pred} holds run '{pred.attrs['run_name']}''s predictions, not run '{name}''s")
        return 1
    model, energies = rebuild(args.results, name)
    data = fr.FrameSet(args.data)
    assert len(pred.value) == len(data) and len(pred.grad) == len(data.numbers), "PRED.h5 is not of DATA.h5's size"
    e, g, w = np.zeros(len(data)), np.zeros((len(data.numbers), 3)), np.zeros((len(data), 3, 3))
    for f in range(len(data)):
        at = data.frame(f)
        e[f], g[at], w[f] = frame_reference(model, energies, data.positions[at], data.numbers[at], data.cells[f],
                                            data.pbc[f])
    print(f"run '{name}' of {args.results} on {len(data)} frames ({int(data.pbc.any(1).sum())} periodic, "
          f"{len(data.numbers)} atoms) of {args.data}, against {args.pred}; largest |E| {np.abs(e).max():.4g}, "
          f"|dE/dx| {np.abs(g).max():.4g}, |W| {np.abs(w).max():.4g}; W - W^T of the reference: "
          f"{np.abs(w - w.transpose(0, 2, 1)).max() / np.abs(w).max():.1e} of max |W|")
    ok = verdict("value (E incl. element energies) vs PyTorch, relative to max |E|",
                 relative_to_largest(pred.value, e), args.tol)
    ok &= verdict("grad (dE/dx) vs PyTorch, relative to max |dE/dx|", relative_to_largest(pred.grad, g), args.tol)
    ok &= verdict("virial (dE/d eps) vs PyTorch, relative to max |W|", relative_to_largest(pred.virial, w), args.tol)
    worst = int(np.argmax(np.abs(pred.virial - w).reshape(len(data), -1).max(1)))
    print(f"  (worst virial: frame {worst}, eval {np.array2string(pred.virial[worst].reshape(-1), precision=6)}, "
          f"PyTorch {np.array2string(w[worst].reshape(-1), precision=6)})")
    return 0 if ok else 1


# variants -----------------------------------------------------------------------------------------------------------

def rotation(rng):
    """A random proper rotation (det +1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def write_like(source, path, frames, note):
    """A frames file at `path` with source's attributes and datasets' dtypes: `frames` a list of (positions,
    grad, numbers, cell 3 x 3, pbc, value or None)."""
    with h5py.File(source, "r") as f:
        attrs = dict(f.attrs)
        dtypes = {k: f[k].dtype for k in f}
    with h5py.File(path, "w") as f:
        f["positions"] = np.concatenate([p for p, *_ in frames]).astype(dtypes["positions"])
        f["grad"] = np.concatenate([g for _, g, *_ in frames]).astype(dtypes["grad"])
        f["numbers"] = np.concatenate([z for _, _, z, *_ in frames]).astype(dtypes["numbers"])
        f["atoms"] = np.array([len(z) for _, _, z, *_ in frames]).astype(dtypes["atoms"])
        f["cell"] = np.array([c.reshape(9) for *_, c, _, _ in frames]).astype(dtypes["cell"])
        f["pbc"] = np.array([p for *_, p, _ in frames]).astype(dtypes["pbc"])
        if "value" in dtypes:
            f["value"] = np.array([v for *_, v in frames]).astype(dtypes["value"])
        for k, v in attrs.items():
            f.attrs[k] = v
        if "frames" in attrs:
            f.attrs["frames"] = len(frames)
        f.attrs["variant"] = note


def variants(args):
    data = fr.FrameSet(args.data)
    rng = np.random.default_rng(args.seed)
    values = data.values if data.values is not None else np.full(len(data), np.nan)
    os.makedirs(args.out_dir, exist_ok=True)

    def frame(f):
        at = data.frame(f)
        return data.positions[at], data.grad[at], data.numbers[at], data.cells[f], data.pbc[f], values[f]

    # moved.h5: one atom by a lattice vector (periodic frames), a shift of the origin, then one turn of everything
    moved, turns, shifts, lattice_moves, moved_atom = [], [], [], [], []
    for f in range(len(data)):
        positions, grad, numbers, cell, pbc, value = frame(f)
        positions = positions.copy()
        n = rng.integers(-2, 3, size=3) * pbc
        if pbc.any() and not n.any():
            n[np.flatnonzero(pbc)[0]] = 1
        k = f % len(numbers)
        positions[k] += n.astype(np.float64) @ cell
        shift = rng.uniform(-3, 3, size=3)
        turn = rotation(rng)
        moved.append(((positions + shift) @ turn.T, grad @ turn.T, numbers, cell @ turn.T, pbc, value))
        turns.append(turn)
        shifts.append(shift)
        lattice_moves.append(n)
        moved_atom.append(k)
    write_like(args.data, os.path.join(args.out_dir, "moved.h5"), moved,
               "check_frames_eval.py: each frame turned and shifted, one atom of a periodic one moved by a lattice "
               "vector")

    # supercell.h5: the fully periodic frames doubled along a, b and c
    big, big_frames, atom_map = [], [], []
    copies = np.array(list(np.ndindex(2, 2, 2)), dtype=np.float64)
    for f in range(len(data)):
        if not data.pbc[f].all():
            continue
        positions, grad, numbers, cell, pbc, value = frame(f)
        big.append((np.concatenate([positions + c @ cell for c in copies]), np.tile(grad, (8, 1)), np.tile(numbers, 8),
                    2 * cell, pbc, 8 * value))
        big_frames.append(f)
        atom_map.append(np.tile(np.arange(data.first[f], data.first[f + 1]), 8))
    write_like(args.data, os.path.join(args.out_dir, "supercell.h5"), big,
               "check_frames_eval.py: the fully periodic frames as 2 x 2 x 2 supercells")

    # strained.h5: each frame by eps_ab = +h, -h
    strained, strain_rows = [], []
    for f in range(len(data)):
        positions, grad, numbers, cell, pbc, value = frame(f)
        for a in range(3):
            for b in range(3):
                for sign in (1, -1):
                    deform = np.eye(3)
                    deform[a, b] += sign * args.step
                    strained.append((positions @ deform.T, grad, numbers, cell @ deform.T, pbc, value))
                    strain_rows.append((f, a, b, sign))
    write_like(args.data, os.path.join(args.out_dir, "strained.h5"), strained,
               f"check_frames_eval.py: each frame strained by eps_ab = +-{args.step:g}, samples unstrained")

    np.savez(os.path.join(args.out_dir, "variants.npz"), atoms=data.atoms, step=args.step,
             turns=np.array(turns), shifts=np.array(shifts), lattice_moves=np.array(lattice_moves),
             moved_atom=np.array(moved_atom), supercell_frames=np.array(big_frames, dtype=np.int64),
             supercell_atoms=(np.concatenate(atom_map) if atom_map else np.zeros(0, dtype=np.int64)),
             strain_rows=np.array(strain_rows, dtype=np.int64))
    print(f"{args.out_dir}: moved.h5 ({len(moved)} frames), supercell.h5 ({len(big)} frames, "
          f"{sum(len(z) for _, _, z, *_ in big)} atoms), strained.h5 ({len(strained)} frames, step {args.step:g}), "
          "variants.npz")
    return 0


# check --------------------------------------------------------------------------------------------------------------

def check(args):
    v = np.load(os.path.join(args.out_dir, "variants.npz"))
    base, moved, big, strained = (Predictions(p) for p in (args.pred_data, args.pred_moved, args.pred_supercell,
                                                           args.pred_strained))
    ids = {p.path: p.attrs["run_id"] for p in (base, moved, big, strained)}
    if len(set(ids.values())) != 1:
        print(f"the predictions are not of one run: {ids}")
        return 1
    atoms = v["atoms"]
    first = np.concatenate([[0], np.cumsum(atoms)])
    frames = len(atoms)
    assert len(base.value) == frames and len(base.grad) == first[-1], "PRED_DATA.h5: not the data's size"
    assert len(moved.value) == frames and len(moved.grad) == first[-1], "PRED_MOVED.h5: not moved.h5's size"
    assert len(big.value) == len(v["supercell_frames"]) and len(big.grad) == len(v["supercell_atoms"]), \
        "PRED_SUPERCELL.h5: not supercell.h5's size"
    assert len(strained.value) == len(v["strain_rows"]), "PRED_STRAINED.h5: not strained.h5's size"
    e, g, w = base.value, base.grad, base.virial
    g_scale = np.abs(g).max()
    w_scale = np.maximum(np.abs(w).reshape(frames, -1).max(1), 1e-300)  # per frame
    print(f"run '{base.attrs['run_name']}' (id {base.attrs['run_id']}): {frames} frames, {first[-1]} atoms; "
          f"|E| {np.abs(e).min():.4g} to {np.abs(e).max():.4g}, max |dE/dx| {g_scale:.4g}, "
          f"max |W| per frame {w_scale.min():.3g} to {w_scale.max():.3g}")
    ok = True

    # moved: the same frames, turned (x' = x R^T): dE/dx' = dE/dx R^T, W' = R W R^T
    turns = v["turns"]
    back = np.concatenate([moved.grad[first[f]:first[f + 1]] @ turns[f] for f in range(frames)])
    w_back = np.array([turns[f].T @ moved.virial[f] @ turns[f] for f in range(frames)])
    ok &= verdict("moved: E vs the data's, relative to |E|", float((np.abs(moved.value - e) / np.abs(e)).max()),
                  args.tol)
    ok &= verdict("moved: dE/dx turned back vs the data's, relative to max |dE/dx|",
                  float(np.abs(back - g).max() / g_scale), args.tol)
    ok &= verdict("moved: R^T W R vs the data's W, relative to the frame's max |W|",
                  float((np.abs(w_back - w).reshape(frames, -1).max(1) / w_scale).max()), args.tol)

    # supercell: 8 copies of each fully periodic frame
    sf, sa = v["supercell_frames"], v["supercell_atoms"]
    if len(sf):
        ok &= verdict(f"supercell ({len(sf)} frames 2x2x2): E vs 8 E, relative to |8 E|",
                      float((np.abs(big.value - 8 * e[sf]) / np.abs(8 * e[sf])).max()), args.tol)
        ok &= verdict("supercell: dE/dx of each copy vs the frame's, relative to max |dE/dx|",
                      float(np.abs(big.grad - g[sa]).max() / g_scale), args.tol)
        ok &= verdict("supercell: W vs 8 W, relative to the frame's 8 max |W|",
                      float((np.abs(big.virial - 8 * w[sf]).reshape(len(sf), -1).max(1) / (8 * w_scale[sf])).max()),
                      args.tol)
    else:
        print("supercell: no fully periodic frame")

    # strained: central differences of E by each strain component, whose error is truncation plus rounding,
    #   |(E(+h) - E(-h)) / 2h - W_ab| ~ h^2 / 6 |d^3E/d eps_ab^3| + eps |E| / h,   eps = 2.2e-16,
    # E being eval's value with the element energies (they cancel in the difference, but E is rounded to a few ulps of
    # |E| after they are added: |E| up to 270 eV in write_frames.py's data, ulp 5.7e-14 eV). Relative to the frame's
    # largest |W|, which for a briefly trained model is small (down to 2e-3 eV here), the rounding term is about
    # 3e-12 / h, and the truncation term about 24 h^2 (measured: 2.4e-5 at h = 1e-3; the descriptor's narrow
    # Gaussians and zeta = 4 make d^3E/d eps^3 large against W). The sum is smallest near h = 4e-5: at the default
    # h = 3e-5, about 1e-7 (2e-8 truncation, 1e-7 rounding; 3e-7 at h = 1e-5, 7e-7 at h = 1e-4), so 1e-6 leaves a
    # margin of 10 and still catches a wrong sign, factor or cell term (errors of order 1). E is C1 but not C2 where
    # a pair crosses a cutoff (fc's second derivative jumps there), which adds an error of order (the crossing's
    # depth)^2 / h: in write_frames.py's frames the nearest pair, frame 11's at 3.00006 Angstrom (2e-5 d beyond
    # radial_cutoff 3.0), crosses by 3e-5 Angstrom in its eps_xx = -h frame, which adds about 2e-8 (6e-7 at
    # h = 1e-4, where it is the largest error).
    rows, h = v["strain_rows"], float(v["step"])
    fd = np.zeros((frames, 3, 3))
    seen = np.zeros((frames, 3, 3), dtype=np.int64)
    for k, (f, a, b, sign) in enumerate(rows):
        fd[f, a, b] += sign * strained.value[k] / (2 * h)
        seen[f, a, b] += 1
    done = np.flatnonzero((seen == 2).all((1, 2)))
    diff = np.abs(fd[done] - w[done]).reshape(len(done), -1).max(1) / w_scale[done]
    worst = int(done[np.argmax(diff)]) if len(done) else -1
    ok &= verdict(f"strained ({len(done)} frames x 9 components, h = {h:g}): (E(+h) - E(-h)) / 2h vs W, relative to "
                  "the frame's max |W|", float(diff.max()) if len(done) else 0.0, args.stress_tol)
    if len(done):
        print(f"  (worst: frame {worst}, finite differences {np.array2string(fd[worst].reshape(-1), precision=6)}, "
              f"eval's W {np.array2string(w[worst].reshape(-1), precision=6)})")
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("reference", help="eval's predictions vs PyTorch's on the run's saved weights")
    p.add_argument("results")
    p.add_argument("data")
    p.add_argument("pred")
    p.add_argument("--run", default="best", help="best (the run PRED.h5 names) or a run's group name")
    p.add_argument("--tol", type=float, default=1e-10)
    p = sub.add_parser("variants", help="write moved.h5, supercell.h5, strained.h5 and variants.npz")
    p.add_argument("data")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--step", type=float, default=3e-5, help="h, the strain of the central differences")
    p = sub.add_parser("check", help="eval's predictions on the variants vs on the data")
    for name in ("out_dir", "pred_data", "pred_moved", "pred_supercell", "pred_strained"):
        p.add_argument(name)
    p.add_argument("--tol", type=float, default=1e-12)
    p.add_argument("--stress-tol", type=float, default=1e-6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    return {"reference": reference, "variants": variants, "check": check}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
