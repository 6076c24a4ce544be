#!/usr/bin/env python3
"""The PyTorch peer of bench/bench_molecule.sh: the script a user would write by hand. An MLP on raw Cartesian
coordinates or on the inverse interatomic distances (sGDML's descriptor), trained on dE/dx by double backward with
Adam, a cosine schedule to lr/100 and mini-batches; then its held-out force error.

Usage: molecule_peer.py TRAIN.h5 TEST.h5 [--features identity|inverse_distances] [--widths 64 64]
                        [--activation silu] [--epochs 300] [--batch 128] [--lr 3e-3] [--threads 2] [--seed 0]
                        [--standardize]

--standardize does what gradfit_dist's data.standardize does: for raw coordinates, x~ = (x - mu) / sigma per
component and S~ = S sigma / s; with inverse distances, phi~ = (phi - mu_phi) / sigma_phi and S~ = S / s (s: the
RMS of the scaled S over the training rows); the errors are in eV/Angstrom either way.

Prints one line: features, wall seconds of the training, and on TEST.h5 the relative gradient error
||dV/dx - S|| / ||S||, the force MAE and RMSE (eV/Angstrom, per component).
"""
import argparse
import time

import h5py
import torch


class InverseDistances(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        pairs = [(i, j) for i in range(n // 3) for j in range(i + 1, n // 3)]
        self.register_buffer("pair_i", torch.tensor([i for i, _ in pairs]))
        self.register_buffer("pair_j", torch.tensor([j for _, j in pairs]))
        self.dim = len(pairs)

    def forward(self, x):
        atoms = x.reshape(x.shape[0], -1, 3)
        d = atoms.index_select(1, self.pair_i) - atoms.index_select(1, self.pair_j)
        return d.square().sum(-1).sqrt().reciprocal()


class Affine(torch.nn.Module):
    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def forward(self, x):
        return (x - self.mean) / self.scale


def model_of(args, n, phi_scaling):
    layers = []
    inputs = n
    if args.features == "inverse_distances":
        layers.append(InverseDistances(n))
        inputs = layers[0].dim
        if phi_scaling is not None:
            layers.append(Affine(*phi_scaling))
    activation = {"silu": torch.nn.SiLU, "softplus": torch.nn.Softplus, "tanh": torch.nn.Tanh}[args.activation]
    for width in args.widths:
        layers += [torch.nn.Linear(inputs, width), activation()]
        inputs = width
    layers.append(torch.nn.Linear(inputs, 1))
    return torch.nn.Sequential(*layers)


def gradient(model, x, create_graph):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).sum(), x, create_graph=create_graph)
    return g


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train")
    parser.add_argument("test")
    parser.add_argument("--features", default="inverse_distances", choices=["identity", "inverse_distances"])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--activation", default="silu")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--standardize", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with h5py.File(args.train) as f:
        x, s = torch.from_numpy(f["x"][:]).float(), torch.from_numpy(f["grad"][:]).float()
    with h5py.File(args.test) as f:
        x_test, s_test = torch.from_numpy(f["x"][:]).float(), torch.from_numpy(f["grad"][:]).float()
    phi_scaling = None
    x_mean, x_scale, s_scale = torch.zeros(x.shape[1]), torch.ones(x.shape[1]), 1.0
    if args.standardize and args.features == "identity":
        x_mean, x_scale = x.mean(0), x.std(0, unbiased=False)
        s_scale = (s * x_scale).square().mean().sqrt().item()
    elif args.standardize:
        phi = InverseDistances(x.shape[1])(x)
        phi_scaling = (phi.mean(0), phi.std(0, unbiased=False))
        s_scale = s.square().mean().sqrt().item()
    # The model's units: inputs (x - mu) / sigma, targets S sigma / s; back: dV/dx = grad * s / sigma.
    x, x_test = (x - x_mean) / x_scale, (x_test - x_mean) / x_scale
    s = s * x_scale / s_scale
    torch.manual_seed(args.seed)
    model = model_of(args, x.shape[1], phi_scaling)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs, eta_min=args.lr / 100)
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(x.shape[0])
        for first in range(0, x.shape[0], args.batch):
            rows = order[first:first + args.batch]
            loss = torch.nn.functional.mse_loss(gradient(model, x[rows], True), s[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - start
    g = gradient(model, x_test, False) * s_scale / x_scale
    error = g - s_test
    relative = (error.norm() / s_test.norm()).item()
    print(f"pytorch {args.features}{', standardized' if args.standardize else ''}: {seconds:.1f} s training; "
          f"test: relative gradient error {relative:.4f}, "
          f"force MAE {error.abs().mean().item():.4f} eV/A, RMSE {error.square().mean().sqrt().item():.4f} eV/A")


if __name__ == "__main__":
    main()
