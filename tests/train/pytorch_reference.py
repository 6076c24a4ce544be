#!/usr/bin/env python3
"""PyTorch's own training of a gradfit_dist run, compared with what gradfit_dist wrote.

Usage: pytorch_reference.py RESULTS.h5 DATA.h5 [--run NAME]... [--tol 1e-9]
       pytorch_reference.py RESULTS.h5 --schedule-only [--run NAME]...

For each run (all runs of RESULTS.h5 by default), it rebuilds the run from its attributes, the way gradfit_dist
builds it: torch.manual_seed(seed), then nn.Linear layers n -> widths... -> 1 in order (made in float32, then
converted to the run's dtype), the activation between them; with model.features, a parameterless module in front
computes phi(x) (inverse distances or periodic pairs, the same operations) and the first layer takes its m inputs;
with atom_centered, one such network per element on each atom's descriptor, summed over the atoms
(tests/train/atom_centered_reference.py).
It trains on DATA.h5 (x, grad), full batch or in gradfit_dist's mini-batches, with
torch.optim (Adam, AdamW, SGD, or LBFGS(lr, history_size, tolerance_grad, tolerance_change, max_iter=1,
line_search_fn='strong_wolfe') stepped once per epoch with a closure that computes the loss and its gradient) and
torch.optim.lr_scheduler, stepped once per epoch:

  constant     no scheduler
  exponential  ExponentialLR(gamma = (lr_final / lr) ** (1 / (epochs - 1)))
  cosine       LinearLR(start_factor=0.1, total_iters=warmup_epochs) for warmup_epochs, then
               CosineAnnealingLR(T_max = epochs - warmup_epochs, eta_min = lr_final), through SequentialLR
               (without warmup: the CosineAnnealingLR alone)
  plateau      ReduceLROnPlateau(factor, patience, min_lr) on the epoch's training loss

and clips the gradient with clip_grad_norm_(max_grad_norm) when max_grad_norm > 0. A parameter that gets no
gradient (the output bias under a pure gradient loss) keeps its .grad None, as in any PyTorch training: the
optimizers skip it (AdamW does not decay it), and LBFGS and clip_grad_norm_ count it as zeros. With
ema_decay > 0 it keeps torch.optim.swa_utils.AveragedModel(model, avg_fn=lambda e, w, n: ema_decay * e +
(1 - ema_decay) * w), updated once before the first epoch (so that it starts as the initial weights) and after every
optimizer step; the saved weights are then the average's. The saved weights and their loss (the run's final_loss)
are compared too.

The history's train_loss is the run's train.loss on (dV/dx, S) -- nn.MSELoss(), or nn.HuberLoss(delta=huber_delta),
mean reduction; where DATA.h5 has a `weight` dataset w, the weighted mean sum_k w_k sum_i loss(r_ki) / (n sum_k w_k)
-- with the weights before the epoch's step (for LBFGS: what step() returns, the loss at the iteration's start),
rel_grad_error ||dV/dx - S|| / ||S|| with the same weights (each row's squares times w_k where there are weights),
and lr the rate the step used. For LBFGS the run's function_evaluations attribute must equal the optimizer's
state['func_evals'].
With --schedule-only it trains nothing: for any run (mini-batches, validation), it steps the run's scheduler on a
parameterless optimizer with the losses the run recorded (plateau: val_loss where the run has validation, else
train_loss) and requires the lr history to equal the rates it gives, bit for bit.

It prints, per run, the largest relative differences of train_loss, rel_grad_error and lr (element by element), of
the final weights (model/; per tensor, relative to its largest element) and of final_loss, and exits 1 when one
exceeds the tolerance. With values in DATA.h5 and train.value_weight w > 0 the loss adds w * mean((V - value)^2);
with atom_centered w * mean(((V - E') / a)^2) per atom (a atoms), E' the values less the element energies
sum_i b_{Z_i}, b_Z numpy.linalg.lstsq's (least norm) fit to the values, which must equal the run's element_energies
(compared as the weights are). Runs must be without validation; mini-batch runs (not LBFGS, without row
weights) take gradfit_dist's batches (tests/train/batch_order.py), in its order. A run with data.standardize
and model.features trains on the scaled features its standardization/ group records and on S / s (mse only).

DATA.h5 in the frames layout (attribute layout = "frames": scripts/ase_import.py's frames of any atoms, some with a
periodic cell) takes atom_centered runs only, without row weights or data.standardize: the elements are those of
all frames, the descriptor each atom's over the periodic images of its frame's atoms, the rows (of the mini-batches
too) are frames, and a batch of B frames has the gradient term sum l(dV/dx - S) / (B nbar), nbar = 3 A / N (the
mean over all components for the full batch), and the value term value_weight sum_f ((V_f - E'_f) / a_f)^2 / B
(tests/train/frames_reference.py, which gives the definitions); the rest as above.
"""
import argparse
import math
import sys
import warnings

import h5py
import numpy as np
import torch

import atom_centered_reference
import batch_order
import frames_reference

# Attributes of the schedule and clipping, as gradfit_dist defaults them (runs written before they existed).
DEFAULTS = {"schedule": "constant", "lr_final": 0.0, "warmup_epochs": 0, "plateau_factor": 0.1, "plateau_patience": 10,
            "min_lr": 0.0, "weight_decay": 0.0, "max_grad_norm": 0.0, "history_size": 100, "tolerance_grad": 1e-7,
            "tolerance_change": 1e-9, "function_evaluations": 0,
            "ema_decay": 0.0, "loss": "mse", "huber_delta": 1.0, "features": "identity"}
ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "softplus": torch.nn.Softplus, "silu": torch.nn.SiLU,
               "gelu": torch.nn.GELU}


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


class InverseDistances(torch.nn.Module):
    """phi_ij = 1 / |r_i - r_j|, i < j row-major, of the atoms whose Cartesian coordinates x holds (n = 3a)."""

    def __init__(self, n):
        super().__init__()
        pairs = [(i, j) for i in range(n // 3) for j in range(i + 1, n // 3)]
        self.register_buffer("pair_i", torch.tensor([i for i, _ in pairs], dtype=torch.int64))
        self.register_buffer("pair_j", torch.tensor([j for _, j in pairs], dtype=torch.int64))
        self.dim = len(pairs)

    def forward(self, x):
        atoms = x.reshape(x.shape[0], -1, 3)
        d = atoms.index_select(1, self.pair_i) - atoms.index_select(1, self.pair_j)
        return d.square().sum(-1).sqrt().reciprocal()


class Periodic(torch.nn.Module):
    """Component by component: (cos, sin)(2 pi x_i / L_i) where L_i > 0, x_i where L_i = 0."""

    def __init__(self, periods):
        super().__init__()
        n = len(periods)
        self.register_buffer("angular", torch.tensor([2 * math.pi / p if p > 0 else 0.0 for p in periods],
                                                     dtype=torch.float64))
        columns = []
        for i, p in enumerate(periods):
            columns += [n + i, 2 * n + i] if p > 0 else [i]
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.int64))
        self.dim = len(columns)

    def forward(self, x):
        theta = x * self.angular
        return torch.cat([x, theta.cos(), theta.sin()], -1).index_select(-1, self.columns)


class Scaled(torch.nn.Module):
    """data.standardize with features: (phi - mean) / scale."""

    def __init__(self, features, mean, scale):
        super().__init__()
        self.features, self.dim = features, features.dim
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float64))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float64))

    def forward(self, x):
        return (self.features(x) - self.mean) / self.scale


def features_of(attrs, scaling=None):
    """model.features as a parameterless module in front of the MLP (None for the identity); `scaling`: the run's
    standardization/ feature_mean and feature_scale, or None."""
    kind, n = text(attrs["features"]), int(attrs["dim"])
    features = None
    if kind == "inverse_distances":
        features = InverseDistances(n)
    if kind == "periodic":
        features = Periodic([float(p) for p in attrs["periods"]])
    return Scaled(features, *scaling) if features is not None and scaling is not None else features


def build_model(attrs, scaling=None, elements=None):
    """The run's model and dtype; `elements`: the frames layout's (frames_reference.py), None for the fixed one."""
    torch.manual_seed(int(attrs["seed"]))
    dtype = {"float64": torch.float64, "float32": torch.float32}[text(attrs["dtype"])]
    if text(attrs["features"]) == "atom_centered":  # one network per element, summed over the atoms
        from ase.data import chemical_symbols
        if elements is None:
            descriptor = atom_centered_reference.AtomCentered(attrs, attrs["numbers"])
            networks = atom_centered_reference.ElementNetworks
        else:
            descriptor = frames_reference.FramesDescriptor(attrs, elements)
            networks = frames_reference.FrameNetworks
        element_widths = {z: [int(w) for w in attrs[f"widths_{chemical_symbols[z]}"]] for z in descriptor.elements
                          if f"widths_{chemical_symbols[z]}" in attrs}  # model.element_widths
        model = networks(descriptor, [int(w) for w in attrs["widths"]], ACTIVATIONS[text(attrs["activation"])],
                         element_widths)
        return model.to(dtype), dtype
    assert elements is None, "the frames layout: model.features atom_centered only"
    features = features_of(attrs, scaling)
    sizes = [features.dim if features else int(attrs["dim"])] + [int(w) for w in attrs["widths"]]
    layers = [features] if features else []
    for i in range(len(sizes) - 1):
        layers += [torch.nn.Linear(sizes[i], sizes[i + 1]), ACTIVATIONS[text(attrs["activation"])]()]
    layers.append(torch.nn.Linear(sizes[-1], 1))
    return torch.nn.Sequential(*layers).to(dtype), dtype


def make_optimizer(attrs, params):
    name, lr = text(attrs["optimizer"]), float(attrs["lr"])
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, history_size=int(attrs["history_size"]), max_iter=1,
                                 line_search_fn="strong_wolfe", tolerance_grad=float(attrs["tolerance_grad"]),
                                 tolerance_change=float(attrs["tolerance_change"]))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=float(attrs["weight_decay"]))
    return torch.optim.SGD(params, lr=lr, momentum=float(attrs["momentum"]))


def make_scheduler(attrs, optimizer):
    kind, epochs = text(attrs["schedule"]), int(attrs["epochs"])
    lr, lr_final = float(attrs["lr"]), float(attrs["lr_final"])
    sched = torch.optim.lr_scheduler
    if kind == "exponential":
        return sched.ExponentialLR(optimizer, gamma=(lr_final / lr) ** (1 / (epochs - 1)))
    if kind == "cosine":
        warmup = int(attrs["warmup_epochs"])
        if warmup == 0:
            return sched.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=lr_final)
        linear = sched.LinearLR(optimizer, start_factor=0.1, total_iters=warmup)  # made first, as used
        cosine = sched.CosineAnnealingLR(optimizer, T_max=epochs - warmup, eta_min=lr_final)
        return sched.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])
    if kind == "plateau":
        return sched.ReduceLROnPlateau(optimizer, factor=float(attrs["plateau_factor"]),
                                       patience=int(attrs["plateau_patience"]), min_lr=float(attrs["min_lr"]))
    return None


def make_loss(attrs, weights):
    """train.loss: nn.MSELoss, or nn.HuberLoss(delta), with mean reduction; with per-sample weights w (the data's
    `weight` dataset) the weighted mean sum_k w_k sum_i loss(r_ki) / (n sum_k w_k)."""
    reduction = "mean" if weights is None else "none"
    if text(attrs["loss"]) == "huber":
        fn = torch.nn.HuberLoss(delta=float(attrs["huber_delta"]), reduction=reduction)
    else:
        fn = torch.nn.MSELoss(reduction=reduction)
    if weights is None:
        return fn
    return lambda a, b: (weights[:, None] * fn(a, b)).sum() / (a.shape[1] * weights.sum())


def relative_error(dvdx, grad_samples, weights):
    """||dV/dx - S|| / ||S||, each row's squares times its weight where the data have weights."""
    w = 1.0 if weights is None else weights[:, None]
    return torch.sqrt((w * (dvdx - grad_samples) ** 2).sum() / (w * grad_samples ** 2).sum()).item()


class ValueTerm:
    """train.value_weight w > 0 on data with values E: w * mean(((V - E) / a)^2), a = 1, or the atoms of a frame
    where the model is a sum over atoms (then E less the element energies, element_energies())."""

    def __init__(self, weight, values, atoms):
        self.weight, self.values, self.atoms = weight, values, atoms

    def rows(self, index):
        return ValueTerm(self.weight, self.values[index], self.atoms)

    def __call__(self, v):
        return self.weight * (((v - self.values.to(v.dtype)) / self.atoms) ** 2).mean()


def element_energies(numbers, values):
    """Per element (ascending atomic number) its energy b_Z, the least-squares solution of least norm
    (numpy.linalg.lstsq) of E_f = sum_Z n_Z b_Z over the frames, and the frames' energies less sum_i b_{Z_i}."""
    elements = sorted(set(int(z) for z in numbers))
    counts = np.array([[sum(1 for z in numbers if int(z) == e) for e in elements]] * len(values), dtype=np.float64)
    energies = np.linalg.lstsq(counts, values.numpy(), rcond=None)[0]
    return energies, values - torch.from_numpy(counts @ energies)


def gradient_loss(model, x, grad_samples, loss_fn, value_term=None):
    """The run's loss on (dV/dx, S) (plus the value term, if any), and dV/dx; its weight gradient in .grad (None for
    a parameter without one)."""
    v = model(x).squeeze(1)
    (dvdx,) = torch.autograd.grad(v.sum(), x, create_graph=True)
    loss = loss_fn(dvdx, grad_samples)
    if value_term is not None:
        loss = loss + value_term(v)
    loss.backward()
    return loss, dvdx.detach()


def moving_average(attrs, model):
    """With ema_decay: AveragedModel(avg_fn = decay * e + (1 - decay) * w), updated once before training (so that
    it starts from the initial weights) and after every optimizer step; None without."""
    decay = float(attrs["ema_decay"])
    if decay <= 0:
        return None
    ema = torch.optim.swa_utils.AveragedModel(model, avg_fn=lambda e, w, n: decay * e + (1 - decay) * w)
    ema.update_parameters(model)
    return ema


def batch_epoch(model, optimizer, evaluate, rows, targets, max_norm, ema, order):
    """One epoch of mini-batch steps over gradfit_dist's batches `order` (tests/train/batch_order.py): the epoch's
    loss (the batches' losses weighted by their rows) and relative gradient error, each batch with the weights
    before its step; the moving average, if any, updated after every step."""
    params = list(model.parameters())
    loss_sum, sse = 0.0, 0.0
    for batch in order:
        index = torch.tensor(batch)
        optimizer.zero_grad()
        loss, dvdx, batch_targets = evaluate(model, index)
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        loss_sum += loss.item() * len(batch)
        sse += float(((dvdx - batch_targets) ** 2).sum())
    return loss_sum / rows, math.sqrt(sse / float((targets ** 2).sum()))


def train(attrs, x, grad_samples, weights=None, scaling=None, value_term=None):
    """The fixed layout: rows x (N x 3a) with their gradient samples; see optimize."""
    model, dtype = build_model(attrs, scaling)
    assert value_term is None or weights is None, "a value term: without row weights"
    x, grad_samples = x.to(dtype).requires_grad_(True), grad_samples.to(dtype)
    weights = None if weights is None else weights.to(dtype)
    loss_fn = make_loss(attrs, weights)

    def evaluate(net, index=None):
        if index is None:
            return gradient_loss(net, x, grad_samples, loss_fn, value_term) + (grad_samples,)
        return gradient_loss(net, x[index], grad_samples[index], loss_fn,
                             value_term and value_term.rows(index)) + (grad_samples[index],)

    return optimize(attrs, model, evaluate, x.shape[0], grad_samples, weights)


def optimize(attrs, model, evaluate, rows, targets, weights=None):
    """Trains the model as the run did on `rows` rows (frames) whose gradient samples are `targets`:
    evaluate(model, index) gives the loss of the rows `index` (a tensor; None: all), with its weight gradient in
    .grad, their dV/dx and their targets. Returns the histories, the saved weights by gradfit_dist's names, LBFGS's
    function evaluations, the final loss and the fraction of |dV/dx - S| >= huber_delta at the end."""
    params = list(model.parameters())
    optimizer = make_optimizer(attrs, params)
    scheduler = make_scheduler(attrs, optimizer)
    max_norm = float(attrs["max_grad_norm"])
    lbfgs = isinstance(optimizer, torch.optim.LBFGS)
    ema = moving_average(attrs, model)
    first = {}  # dV/dx of the epoch's first evaluation (LBFGS evaluates more in its line search)

    def closure():
        optimizer.zero_grad()
        loss, dvdx, _ = evaluate(model)
        first.setdefault("dvdx", dvdx)
        return loss

    losses, rates, errors = [], [], []
    batch_size = int(attrs["batch_size"])
    for epoch in range(1, int(attrs["epochs"]) + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        first.clear()
        if 0 < batch_size < rows:
            assert weights is None and not lbfgs, "mini-batches: without row weights, not LBFGS"
            order = batch_order.batches(rows, batch_size, int(attrs["seed"]), epoch)
            loss, error = batch_epoch(model, optimizer, evaluate, rows, targets, max_norm, ema, order)
            losses.append(loss)
            errors.append(error)
        else:
            if lbfgs:
                loss = optimizer.step(closure)
            else:
                loss = closure()
                if max_norm > 0:
                    torch.nn.utils.clip_grad_norm_(params, max_norm)
                optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(loss.item())
            errors.append(relative_error(first["dvdx"], targets, weights))
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(losses[-1])
        elif scheduler is not None:
            scheduler.step()
    saved = model if ema is None else ema.module
    optimizer.zero_grad()
    final_loss, dvdx, _ = evaluate(saved)
    final_loss = final_loss.item()
    final = {}
    if isinstance(saved, atom_centered_reference.ElementNetworks):
        from ase.data import chemical_symbols
        final = saved.named_weights(chemical_symbols)
    linears = [] if final else [m for m in saved if isinstance(m, torch.nn.Linear)]
    for i, layer in enumerate(linears):
        final[f"layers.{i}.weight"] = layer.weight.detach().double().numpy()
        final[f"layers.{i}.bias"] = layer.bias.detach().double().numpy()
    evaluations = optimizer.state[params[0]].get("func_evals", 0) if lbfgs else 0
    beyond = float((torch.abs(dvdx - targets) >= float(attrs["huber_delta"])).double().mean())
    return np.array(losses), np.array(rates), np.array(errors), final, evaluations, final_loss, beyond


def train_fixed(attrs, g, x, grad_samples, weights, values):
    """A run on the fixed layout: train()'s results (the final loss in the user's units), the value term's weight
    (None without one) and the element energies' largest difference from the run's."""
    # data.standardize with features: the model trains on phi~ and S / s, its history in those units, its final
    # metrics in the user's (for mse, the loss times s^2).
    scaling, s2, targets = None, 1.0, grad_samples
    if int(attrs.get("standardize", 0)) and "feature_mean" in g.get("standardization", {}):
        st = g["standardization"]
        assert text(attrs["loss"]) == "mse", "standardized features: mse only"
        scaling = (st["feature_mean"][:].tolist(), st["feature_scale"][:].tolist())
        s2 = float(st.attrs["value_scale"]) ** 2
        targets = (grad_samples.double() / float(st.attrs["value_scale"])).to(grad_samples.dtype)
    value_term, d_energies = None, 0.0
    if values is not None and text(attrs["features"]) == "atom_centered":
        energies, shifted = element_energies(attrs["numbers"], values)
        d_energies = relative_to_largest(attrs["element_energies"], energies)
        if float(attrs["value_weight"]) > 0:
            value_term = ValueTerm(float(attrs["value_weight"]), shifted, len(attrs["numbers"]))
    elif values is not None and float(attrs["value_weight"]) > 0:
        assert not int(attrs.get("standardize", 0)), "a value term: without data.standardize"
        value_term = ValueTerm(float(attrs["value_weight"]), values, 1)
    losses, rates, errors, final, evaluations, final_loss, beyond = train(attrs, x, targets, weights, scaling,
                                                                          value_term)
    result = losses, rates, errors, final, evaluations, final_loss * s2, beyond
    return result, value_term and value_term.weight, d_energies


def train_frames(attrs, data):
    """A run on the frames layout (frames_reference.FrameSet `data`): as train_fixed."""
    assert not int(attrs.get("standardize", 0)), "the frames layout: without data.standardize"
    model, dtype = build_model(attrs, elements=data.elements)
    shifted, d_energies = None, 0.0
    if data.values is not None:
        energies, shifted = data.element_energies()
        d_energies = relative_to_largest(attrs["element_energies"], energies)
    value_weight = float(attrs["value_weight"]) if shifted is not None and float(attrs["value_weight"]) > 0 else None
    objective = frames_reference.Objective(attrs, data, model.descriptor, dtype,
                                           shifted if value_weight else None)
    return optimize(attrs, model, objective, objective.rows, objective.targets), value_weight, d_energies


def replay_schedule(attrs, group):
    """The rates PyTorch's scheduler gives, fed the run's recorded losses."""
    optimizer = make_optimizer(attrs, [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))])
    scheduler = make_scheduler(attrs, optimizer)
    watched = group["val_loss"][:] if float(attrs["val_fraction"]) > 0 else group["train_loss"][:]
    rates = []
    for loss in watched:
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(float(loss))
        elif scheduler is not None:
            scheduler.step()
    return np.array(rates)


def check_schedule(name, attrs, group):
    rates, recorded = replay_schedule(attrs, group), group["lr"][:]
    same = np.array_equal(rates, recorded)
    kind = text(attrs["schedule"])
    if kind == "plateau":
        kind += " on " + ("val_loss" if float(attrs["val_fraction"]) > 0 else "train_loss")
    print(f"{name}: {kind}, {len(recorded)} epochs, {len(set(recorded))} rates, "
          f"lr {recorded[0]:.4g} -> {recorded[-1]:.4g}: "
          f"{'equal to' if same else 'DIFFERENT from'} PyTorch's scheduler fed the recorded losses")
    return same


def relative(a, b):
    """The largest |a - b| / |b|, element by element (histories: positive numbers)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float((np.abs(a - b) / np.abs(b)).max())


def relative_to_largest(a, b):
    """|a - b| / max |b| over a tensor (weights, some near zero)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results")
    parser.add_argument("data", nargs="?", help="the run's data file (not with --schedule-only)")
    parser.add_argument("--schedule-only", action="store_true", help="replay the schedule on the recorded losses")
    parser.add_argument("--run", action="append", help="a run's group name under /runs (default: every run)")
    parser.add_argument("--tol", type=float, default=1e-9)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # SequentialLR's step(0) of the cosine warns that epoch arguments are old
    torch.set_num_threads(1)
    ok = True
    if args.schedule_only:
        with h5py.File(args.results, "r") as f:
            for name in args.run or sorted(f["runs"]):
                ok &= check_schedule(name, {**DEFAULTS, **dict(f["runs"][name].attrs)}, f["runs"][name])
        return 0 if ok else 1
    with h5py.File(args.data, "r") as f:
        frames = text(f.attrs.get("layout", "")) == "frames"
        if not frames:
            x, grad_samples = torch.from_numpy(f["x"][:]), torch.from_numpy(f["grad"][:])
            weights = torch.from_numpy(f["weight"][:].reshape(-1)) if "weight" in f else None
            values = torch.from_numpy(f["value"][:].reshape(-1)).double() if "value" in f else None
    if frames:
        data, weights = frames_reference.FrameSet(args.data), None
    with h5py.File(args.results, "r") as f:
        for name in args.run or sorted(f["runs"]):
            g = f["runs"][name]
            attrs = {**DEFAULTS, **dict(g.attrs)}
            assert float(attrs["val_fraction"]) == 0, "without validation only"
            assert text(attrs["status"]) == "done", (name, attrs["status"])
            if frames:
                result, value_weight, d_energies = train_frames(attrs, data)
            else:
                result, value_weight, d_energies = train_fixed(attrs, g, x, grad_samples, weights, values)
            losses, rates, errors, final, evaluations, final_loss, beyond = result
            d_loss = relative(g["train_loss"][:], losses)
            d_lr = relative(g["lr"][:], rates)
            d_err = relative(g["rel_grad_error"][:], errors)
            d_w = max(relative_to_largest(g["model"][k][:], w) for k, w in final.items())
            d_final = relative(attrs["final_loss"], final_loss)
            worst = max(d_loss, d_lr, d_err, d_w, d_final, d_energies)
            same_evaluations = int(attrs["function_evaluations"]) == evaluations
            ok &= worst <= args.tol and len(g["train_loss"]) == len(losses) and same_evaluations
            label = text(attrs["optimizer"])
            if label == "lbfgs":
                label += (f" ({evaluations} function evaluations, "
                          f"{'as' if same_evaluations else 'DIFFERENT from'} PyTorch's)")
            if float(attrs["ema_decay"]) > 0:
                label += f", ema_decay {float(attrs['ema_decay']):g}"
            label += ", " + text(attrs["loss"])
            if text(attrs["loss"]) == "huber":  # how much of each branch the comparison covered
                label += f"({float(attrs['huber_delta']):g}), {100 * beyond:.0f}% of |dV/dx - S| >= delta at the end"
            label += ", weighted" if weights is not None else ""
            if frames:
                label += f", {len(data)} frames ({int(data.pbc.any(1).sum())} periodic)"
            if value_weight is not None:
                label += f", value_weight {value_weight:g}"
            if "element_energies" in attrs:
                label += f", element energies {d_energies:.2e} from numpy's lstsq"
            print(f"{name}: {label}, {len(losses)} epochs, lr {rates[0]:.4g} -> {rates[-1]:.4g}; max relative "
                  f"difference to PyTorch: train_loss {d_loss:.2e}, rel_grad_error {d_err:.2e}, lr {d_lr:.2e}, "
                  f"weights {d_w:.2e}, final_loss {d_final:.2e} "
                  f"({'ok' if worst <= args.tol and same_evaluations else 'FAIL'}, tolerance {args.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
