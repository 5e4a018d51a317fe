"""A convolutional SNN built from snnkit neuron modules in a plain ``torch.nn.Sequential``.

    python examples/conv_nmnist.py                      # synthetic N-MNIST-sized data
    python examples/conv_nmnist.py --data-dir ~/data    # the real N-MNIST files (tonic)
    python examples/conv_nmnist.py --grad bptt --steps 50 --bins 50

The network is the N-MNIST recipe's (``snnkit run --dataset nmnist``: SLAYER's N-MNIST
network as the EXODUS paper trained it, 12c5p1-a2-64c5-a2-10), written out by hand:
torch convolutions and pooling applied to every time step (``TimeDistributed``), the
gradient method's LIF neurons after each convolution (``method.neuron``), a leaky-
integrator readout, cross-entropy of the readout's time average. Without ``--data-dir``
the inputs are synthetic 34x34x2 event rasters whose active patch depends on the class,
so the loss falls within a few steps. Prints one line per step: step, loss, accuracy.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from snnkit import LIF, get_registry
from snnkit.nn import Readout, TimeDistributed, reset_state

CLASSES, SIZE = 10, 34


def model(grad: str, dt: float) -> nn.Module:
    method = get_registry().gradient(grad)
    lif = LIF(tau_mem=150.0, threshold=0.1, dt=dt)  # 50 steps of 3 ms, as the recipe
    return nn.Sequential(
        TimeDistributed(nn.Conv2d(2, 12, 5, padding=1, bias=False)),  # -> [T, B, 12, 32, 32]
        method.neuron(lif, (12, 32, 32)),
        TimeDistributed(nn.AvgPool2d(2)),  # -> 16x16
        TimeDistributed(nn.Conv2d(12, 64, 5, bias=False)),  # -> [T, B, 64, 12, 12]
        method.neuron(lif, (64, 12, 12)),
        TimeDistributed(nn.AvgPool2d(2)),  # -> 6x6
        TimeDistributed(nn.Flatten()),
        Readout(64 * 6 * 6, CLASSES),  # voltages [T, B, 10]
    )


def synthetic_batch(batch: int, bins: int, generator: torch.Generator):
    """Sparse events everywhere, dense in an 8x8 patch whose place is the class."""
    labels = torch.randint(CLASSES, (batch,), generator=generator)
    rate = torch.full((batch, 2, SIZE, SIZE), 0.01)
    for b, c in enumerate(labels.tolist()):
        row, col = 3 + 14 * (c // 5), 1 + 6 * (c % 5)
        rate[b, :, row : row + 8, col : col + 8] = 0.3
    x = (torch.rand(bins, *rate.shape, generator=generator) < rate).float()
    return x, labels


def nmnist_batches(data_dir: str, batch: int, dt: float):
    """Batches of the real N-MNIST training set, binned on ``dt`` ms (tonic reads them)."""
    from snnkit.data.neuromorphic import load

    train = load("nmnist", "train", data_dir=data_dir)
    raster = train.raster(dt)  # binned per batch when indexed
    while True:
        for index in torch.randperm(len(train)).split(batch):
            x = raster[:, index]  # [T, B, 2*34*34]
            yield x.reshape(x.shape[0], x.shape[1], 2, SIZE, SIZE), train.labels[index]


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grad", default="exodus", help="a raster method (exodus, bptt, ...)")
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--bins", type=int, default=100, help="time steps of 3 ms")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--data-dir", help="a folder with N-MNIST (else synthetic data)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    dt = 3.0
    net = model(args.grad, dt)
    optimiser = torch.optim.Adam(net.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(1)
    batches = (
        nmnist_batches(args.data_dir, args.batch, dt)
        if args.data_dir
        else iter(lambda: synthetic_batch(args.batch, args.bins, generator), None)
    )
    losses = []
    for step in range(1, args.steps + 1):
        x, y = next(batches)
        reset_state(net)  # neuron state belongs to one batch
        logits = net(x).mean(0)  # time average of the readout voltage
        loss = nn.functional.cross_entropy(logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        accuracy = (logits.argmax(1) == y).float().mean().item()
        losses.append(loss.item())
        print(f"step {step:3d}  loss {loss.item():.4f}  accuracy {accuracy:.2f}", flush=True)
    return losses


if __name__ == "__main__":
    main()
