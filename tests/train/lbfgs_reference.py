#!/usr/bin/env python3
"""torch.optim.LBFGS on the 3-D Rosenbrock function, as tests/train/lbfgs_test.cpp steps its port: the reference
that test compares with, computed by the installed PyTorch at test time (so with the CPU's and LibTorch's own
rounding), and how far a rounding moves it.

Usage: lbfgs_reference.py [--history-size 3] [--steps 30]

LBFGS([x], lr=1, history_size, max_iter=1, line_search_fn="strong_wolfe") from x = (-1.5, 2, 0.5) in float64,
stepped `steps` times with a closure that evaluates sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 with the same
tensor operations as the C++ test (narrow, pow, sum, in that order). Prints five lines, floats as repr (which reads
back exactly):
  1. the losses step() returned (the loss at each iteration's start);
  2. the final x;
  3. state['func_evals'];
  4. per step, the largest |loss - loss'| over three runs from a start x' one rounding away (one component moved
     to the next float): how much one rounding grows by that step;
  5. the same for the final x (largest over its components).
"""
import argparse
import math

import torch

START = [-1.5, 2.0, 0.5]


def rosenbrock(x):
    head, tail = x.narrow(0, 0, 2), x.narrow(0, 1, 2)
    return (100 * (tail - head * head).pow(2) + (1 - head).pow(2)).sum()


def run(start, history_size, steps):
    """The losses step() returned, the final x and func_evals."""
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([x], lr=1, history_size=history_size, max_iter=1, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    losses = [float(optimizer.step(closure)) for _ in range(steps)]
    return losses, x.detach().tolist(), optimizer.state[x]["func_evals"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history-size", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    losses, x, evaluations = run(START, args.history_size, args.steps)
    loss_spread, x_spread = [0.0] * len(losses), 0.0
    for i in range(len(START)):
        moved = list(START)
        moved[i] = math.nextafter(moved[i], math.inf)
        other_losses, other_x, _ = run(moved, args.history_size, args.steps)
        loss_spread = [max(s, abs(a - b)) for s, a, b in zip(loss_spread, losses, other_losses)]
        x_spread = max([x_spread] + [abs(a - b) for a, b in zip(x, other_x)])
    print(" ".join(repr(v) for v in losses))
    print(" ".join(repr(v) for v in x))
    print(evaluations)
    print(" ".join(repr(v) for v in loss_spread))
    print(repr(x_spread))


if __name__ == "__main__":
    main()
