#!/usr/bin/env python3
"""The PyTorch (Python) program a user would write for the problems gradfit_dist solves, for timing beside it.

  reference.py large [--samples N] [--epochs E] [--ranks R] [--threads T] [--device cpu|cuda]
      N gradient samples in 8-D, MLP 8-256-256-256-1 Softplus, float32, full batch, Adam lr 1e-3, data-parallel
      over R processes (torch.multiprocessing + gloo), one flat allreduce of all gradients per step.
  reference.py seed-sweep [--epochs E] [--threads T] [--device cpu|cuda] [--csv FILE]
      The gradient of x'Px on a 10x10 grid; relu/tanh/softplus x [10,10]/[64,64] x lr 0.1/0.01/0.001 x seeds 0,1,
      36 runs one after another in one process.

Each prints one machine-readable line at the end ("reference large: key=value ...").
"""
import argparse
import csv
import itertools
import os
import resource
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


def mlp(n_in, widths, activation):
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus}[activation]
    layers, fan_in = [], n_in
    for w in widths:
        layers += [nn.Linear(fan_in, w), act()]
        fan_in = w
    return nn.Sequential(*layers, nn.Linear(fan_in, 1))


def gradient_loss(model, x, S, n_global):
    """MSE(dV/dx, S) over the global batch: this rank's squared errors / (N_global * n)."""
    x = x.detach().requires_grad_(True)
    V = model(x).squeeze(1)
    g, = torch.autograd.grad(V.sum(), x, create_graph=True)
    return ((g - S) ** 2).sum() / (n_global * x.shape[1])


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mib(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def large_rank(rank, args, init_file):
    torch.set_num_threads(args.threads)
    if args.ranks > 1:
        if args.bind and args.ranks <= os.cpu_count():
            os.sched_setaffinity(0, {rank})  # like mpirun --bind-to core
        dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=args.ranks)
    device = torch.device(args.device)
    n, N, R = 8, args.samples, args.ranks
    begin, end = rank * N // R, (rank + 1) * N // R
    gen = torch.Generator().manual_seed(1000 + rank)  # each rank makes only its own rows
    x = (torch.rand(end - begin, n, generator=gen) * 6 - 3).to(device)
    S = torch.randn(end - begin, n, generator=gen).to(device)
    torch.manual_seed(0)  # the same initial weights on every rank
    model = mlp(n, [256, 256, 256], "softplus").to(device)
    params = list(model.parameters())
    for p in params:  # the output bias gets no gradient from dV/dx: it takes part in the allreduce as zeros
        p.grad = torch.zeros_like(p)
    opt = torch.optim.Adam(params, lr=1e-3)
    if R > 1:
        dist.barrier()
    times = []
    for _ in range(args.epochs):
        sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = gradient_loss(model, x, S, N)
        loss.backward()
        if R > 1:
            flat = torch.cat([p.grad.flatten() for p in params])
            dist.all_reduce(flat)
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        opt.step()
        sync(device)
        times.append(time.perf_counter() - t0)
    mem = [peak_memory_mib(device)]
    if R > 1:
        mem = [None] * R
        dist.all_gather_object(mem, peak_memory_mib(device))
        dist.destroy_process_group()
    if rank == 0:
        timed = times[1:] or times  # epoch 1 warms up
        print(f"reference large: ranks={R} threads={args.threads} samples={N} device={args.device} "
              f"epochs={args.epochs} epoch_s_median={statistics.median(timed):.6f} epoch_s_min={min(timed):.6f} "
              f"peak_mib_per_rank={','.join(f'{m:.0f}' for m in mem)} final_loss_rank0={loss.item():.6g}",
              flush=True)


def large(args):
    if args.ranks == 1:
        large_rank(0, args, "")
        return
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(large_rank, args=(args, os.path.join(tmp, "init")), nprocs=args.ranks)


def seed_sweep(args):
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    P = torch.tensor([[20.1892, -26.6218], [-26.6218, 38.0375]])
    axis = torch.linspace(-3.0, 3.0, 10)
    x = torch.cartesian_prod(axis, axis).to(device)  # 10x10 grid, row-major, last axis fastest
    S = x @ (P + P.T).T.to(device)
    rows = []
    sync(device)
    start = time.perf_counter()
    for activation, widths, lr, seed in itertools.product(
            ["relu", "tanh", "softplus"], [[10, 10], [64, 64]], [0.1, 0.01, 0.001], [0, 1]):
        torch.manual_seed(seed)
        model = mlp(2, widths, activation).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(args.epochs):
            opt.zero_grad()
            loss = gradient_loss(model, x, S, x.shape[0])
            loss.backward()
            opt.step()
        rows.append((activation, "x".join(map(str, widths)), lr, seed, loss.item()))  # loss before the last step
    sync(device)
    total = time.perf_counter() - start
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            csv.writer(f).writerows([("activation", "widths", "lr", "seed", "final_loss"), *rows])
    print(f"reference seed-sweep: runs={len(rows)} epochs={args.epochs} threads={args.threads} "
          f"device={args.device} total_s={total:.3f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("large", help="data-parallel epochs on the 8-256-256-256-1 problem")
    p.add_argument("--samples", type=int, default=32768)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--no-bind", dest="bind", action="store_false", help="do not pin rank r to core r")
    p = sub.add_parser("seed-sweep", help="36 small runs one after another")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--csv", help="write each run's final loss here")
    for p in sub.choices.values():
        p.add_argument("--threads", type=int, default=1, help="intra-op threads per process")
        p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    if args.device == "cuda" and getattr(args, "ranks", 1) != 1:
        parser.error("--device cuda runs one rank (one GPU)")
    large(args) if args.command == "large" else seed_sweep(args)


if __name__ == "__main__":
    main()
