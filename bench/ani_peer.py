#!/usr/bin/env python3
"""The TorchANI peer of bench/bench_ani.sh: TorchANI's AEVComputer and ANIModel (one network per element, summed
over the atoms) trained on forces (dE/dx) by double backward as TorchANI's force-training example does, with the
descriptor, widths, activation, optimizer (Adam, a cosine schedule to lr/100), batch and epochs of gradfit_dist's
run, in float32; then its held-out force error.

Usage: ani_peer.py TRAIN.h5 TEST.h5 [--widths 64 64] [--activation silu] [--epochs 300] [--batch 128] [--lr 3e-3]
                   [--threads 2] [--seed 0]

The data files are gradfit_dist's (x: frames x 3a, grad: dE/dx, attribute numbers). The descriptor has ANI-1x's
parameters (gradfit_dist's defaults). Needs torchani importable (see BENCHMARKS.md). Prints one line: wall seconds
of the training, and on TEST.h5 the relative gradient error ||dV/dx - S|| / ||S||, the force MAE and RMSE
(eV/Angstrom, per component).
"""
import argparse
import math
import time

import h5py
import torch
import torchani

ANI_1X = {"radial_cutoff": 5.2, "angular_cutoff": 3.5, "radial_eta": 16.0, "angular_eta": 8.0, "zeta": 32.0,
          "radial_start": 0.9, "angular_start": 0.9, "radial_divisions": 16, "angular_divisions": 4,
          "angle_sections": 8}


def aev_computer(p, elements):
    shf_r = torch.linspace(p["radial_start"], p["radial_cutoff"], p["radial_divisions"] + 1)[:-1]
    shf_a = torch.linspace(p["angular_start"], p["angular_cutoff"], p["angular_divisions"] + 1)[:-1]
    sections = p["angle_sections"]
    shf_z = torch.linspace(0, math.pi, sections + 1)[:-1] + math.pi / (2 * sections)
    return torchani.AEVComputer(torch.tensor(p["radial_cutoff"]), torch.tensor(p["angular_cutoff"]),
                                torch.tensor([p["radial_eta"]]), shf_r, torch.tensor([p["angular_eta"]]),
                                torch.tensor([p["zeta"]]), shf_a, shf_z, elements)


def network(width, widths, activation):
    layers, inputs = [], width
    for w in widths:
        layers += [torch.nn.Linear(inputs, w), activation()]
        inputs = w
    layers.append(torch.nn.Linear(inputs, 1))
    return torch.nn.Sequential(*layers)


def read(path):
    with h5py.File(path) as f:
        x, s, numbers = f["x"][:], f["grad"][:], [int(z) for z in f.attrs["numbers"]]
    frames = len(x)
    return (torch.from_numpy(x).float().reshape(frames, -1, 3), torch.from_numpy(s).float().reshape(frames, -1, 3),
            numbers)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train")
    parser.add_argument("test")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--activation", default="silu")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, s, numbers = read(args.train)
    x_test, s_test, _ = read(args.test)
    elements = sorted(set(numbers))
    computer = aev_computer(ANI_1X, len(elements))
    activation = {"silu": torch.nn.SiLU, "softplus": torch.nn.Softplus, "tanh": torch.nn.Tanh}[args.activation]
    torch.manual_seed(args.seed)
    model = torchani.ANIModel([network(computer.aev_length, args.widths, activation) for _ in elements])
    species = torch.tensor([elements.index(z) for z in numbers])

    def gradient(points, create_graph):
        points = points.detach().requires_grad_(True)
        kinds = species.expand(points.shape[0], -1)
        energies = model(computer((kinds, points))).energies
        (g,) = torch.autograd.grad(energies.sum(), points, create_graph=create_graph)
        return g

    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs, eta_min=args.lr / 100)
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(x.shape[0])
        for first in range(0, x.shape[0], args.batch):
            rows = order[first:first + args.batch]
            loss = torch.nn.functional.mse_loss(gradient(x[rows], True), s[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - start
    error = torch.cat([gradient(x_test[i:i + 512], False) for i in range(0, len(x_test), 512)]) - s_test
    relative = (error.norm() / s_test.norm()).item()
    print(f"torchani {torchani.__version__} (AEV {computer.aev_length} per atom, {len(elements)} networks "
          f"{'-'.join(map(str, args.widths))} {args.activation}): {seconds:.1f} s training; test: relative gradient "
          f"error {relative:.4f}, force MAE {error.abs().mean().item():.4f} eV/A, "
          f"RMSE {error.square().mean().sqrt().item():.4f} eV/A")


if __name__ == "__main__":
    main()
