"""snnkit <-> NIR <-> snntorch / norse: which pairs give the same spikes, and trained
Yin-Yang networks evaluated in the peers.

    python benchmarks/nir_peers.py                                   # the agreement table
    python benchmarks/nir_peers.py --checkpoint runs/A/checkpoint.pt --checkpoint runs/B/...

Needs the extra ``nir`` and the peers (``pip install -c constraints.txt snntorch norse
nirtorch``); a peer that is missing is reported as such. For each architecture and reset,
a random float32 network is exported with the discretisation the peer documents (forward
Euler; snntorch's fixed step 1e-4, norse's ``dt`` argument, here 1e-3), imported by the
peer, run step by step on the same random input, and its output spikes compared with
snnkit's. The reverse direction: a network built in snntorch, exported by snntorch, loaded
by :func:`snnkit.nir.load`. With ``--checkpoint`` (runs trained with ``--readout spiking``),
the trained network's test accuracy in snnkit and in each peer. Writes
``benchmarks/results/nir_peers.json`` (or ``--out``) with the library versions.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path

import torch

from snnkit import IF, LIF, get_registry
from snnkit import arch as arch_mod
from snnkit import nir as snir
from snnkit.bench import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
T, B = 40, 8
STEP = {"snntorch": 1e-4, "norse": 1e-3}  # the time step each peer simulates


def _dense(neuron, **options):
    bptt = get_registry().gradient("bptt")
    return bptt.network("6-16-10-4", neuron, readout=neuron, weight_gain=4.0, **options)


def _conv(neuron):
    bptt = get_registry().gradient("bptt")
    layers = arch_mod.parse("4c3-a2-16-4")
    return arch_mod.build(
        layers, bptt, neuron, input_shape=(1, 8, 8), num_classes=4, readout=neuron,
        weight_gain=4.0,
    )  # fmt: skip


def architectures(reset: str) -> dict:
    """name -> (network builder, input features)."""
    cuba = LIF(tau_mem=10.0, tau_syn=5.0, reset=reset)
    return {
        "CubaLIF feed-forward": (lambda: _dense(cuba), 6),
        "LIF feed-forward": (lambda: _dense(LIF(tau_mem=10.0, reset=reset)), 6),
        "CubaLIF recurrent": (lambda: _dense(cuba, recurrent=True), 6),
        "IF feed-forward": (lambda: _dense(IF(threshold=1.0, reset=reset)), 6),
        "CubaLIF conv2d + avgpool": (lambda: _conv(cuba), 64),
    }


# -- the peers -----------------------------------------------------------------------------


def peer_module(peer: str, graph, reset: str):
    """The peer's torch module for ``graph`` (its own NIR importer)."""
    if peer == "snntorch":
        from snntorch.import_nir import import_from_nir

        return import_from_nir(graph)  # always reset to zero, step 1e-4
    import norse.torch as norse
    from norse.torch.functional import reset as norse_reset

    method = norse_reset.reset_subtract if reset == "subtract" else norse_reset.reset_value
    return norse.from_nir(graph, dt=STEP["norse"], reset_method=method)


def run_peer(module, x: torch.Tensor) -> torch.Tensor:
    """Step ``module`` through ``x[T, B, ...]`` with its state; the outputs ``[T, B, ...]``."""
    state, outputs = None, []
    with torch.no_grad():
        for step in x:
            out, state = module(step, state)
            outputs.append(out)
    return torch.stack(outputs)


def run_snnkit(network, x: torch.Tensor) -> torch.Tensor:
    network.reset_state()
    with torch.no_grad():
        return network(x).output


def compare(peer: str, build, features: int, reset: str, seed: int = 0) -> dict:
    """snnkit -> NIR -> peer on one random network and input: agree or not, and why."""
    torch.manual_seed(seed)
    network = build()
    flat = (torch.rand(T, B, features) < 0.3).float()
    want = run_snnkit(network, flat)
    x = flat.reshape(T, B, 1, 8, 8) if features == 64 else flat
    row = {"peer": peer, "reset": reset, "spikes": int(want.sum().item())}
    try:
        graph = snir.export(network, scheme="euler", time_step=STEP[peer])
        got = run_peer(peer_module(peer, graph, reset), x)
    except Exception as exc:  # a peer's own error is a result here, reported in the table
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return {**row, "result": "error", "detail": f"{type(exc).__name__}: {first}"[:200]}
    if got.shape != want.shape:
        return {**row, "result": "error", "detail": f"output shape {tuple(got.shape)}"}
    differ = int((got != want).sum().item())
    return {
        **row,
        "result": "same" if differ == 0 else "differ",
        "detail": f"{differ} of {want.numel()} outputs differ",
    }


def snntorch_to_snnkit(seed: int = 0) -> dict:
    """A network built and exported by snntorch, loaded by snnkit: the same spikes?"""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16, bias=False),
        # per-neuron decays: snntorch's exporter writes scalar ones with shape (), which
        # nir's type check rejects
        snn.Synaptic(
            alpha=torch.full((16,), 0.8),
            beta=torch.linspace(0.8, 0.95, 16),
            threshold=torch.ones(16),
            init_hidden=True,
            reset_mechanism="zero",
            reset_delay=False,
        ),
        torch.nn.Linear(16, 4, bias=False),
        snn.Leaky(
            beta=torch.full((4,), 0.85),
            threshold=torch.ones(4),
            init_hidden=True,
            reset_mechanism="zero",
            reset_delay=False,
        ),
    )
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[2].weight.mul_(3.0)
    x = (torch.rand(T, B, 6) < 0.3).float()
    graph = export_to_nir(model, x[0, 0])
    want = []
    for layer in model:
        if hasattr(layer, "reset_hidden"):
            layer.reset_hidden()
    with torch.no_grad():
        for step in x:
            want.append(model(step))
    want = torch.stack(want)
    network = snir.load(graph, "bptt", scheme="euler", reset="zero")
    got = run_snnkit(network.float(), x)
    differ = int((got != want).sum().item())
    return {
        "peer": "snntorch -> snnkit",
        "reset": "zero",
        "spikes": int(want.sum().item()),
        "result": "same" if differ == 0 else "differ",
        "detail": f"{differ} of {want.numel()} outputs differ",
    }


# -- trained networks ------------------------------------------------------------------------


def evaluate(checkpoint: Path, peers: list[str]) -> dict:
    """Test accuracy of a trained checkpoint in snnkit and, exported, in each peer."""
    from snnkit.train import trained

    trainer = trained(checkpoint)
    config = trainer.config
    _, snnkit_acc = trainer.evaluate("test")
    x, labels = trainer.inputs["test"], trainer.data["test"].labels
    reset = trainer.neuron.reset
    ours = torch.cat(
        [run_snnkit(trainer.model, x[:, k : k + 500]) for k in range(0, x.shape[1], 500)], 1
    )
    row = {
        "checkpoint": str(checkpoint),
        "method": config.grad,
        "neuron": trainer.neuron.describe(),
        "loss": config.loss,
        "snnkit": snnkit_acc,
        "output spikes": int(ours.sum().item()),
    }
    for peer in peers:
        try:
            graph = snir.export(trainer.model, scheme="euler", time_step=STEP[peer])
            # a fresh module per batch: snntorch's neurons keep their state between calls
            # even when given state=None
            out = torch.cat(
                [
                    run_peer(peer_module(peer, graph, reset), x[:, k : k + 500])
                    for k in range(0, x.shape[1], 500)
                ],
                1,
            )
            row[peer] = (trainer.loss.predict(out) == labels).double().mean().item()
            row[f"{peer} output spikes differing"] = int((out != ours).sum().item())
        except Exception as exc:
            row[peer] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[
                :200
            ]
    return row


def versions() -> dict:
    out = {}
    for name in ("snnkit", "torch", "nir", "nirtorch", "snntorch", "norse"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def installed(peer: str) -> bool:
    try:
        __import__(peer)
        __import__("nirtorch")
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[], type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS / "nir_peers.json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    snir.require_nir()
    peers = [p for p in STEP if installed(p)]
    missing = [p for p in STEP if p not in peers]
    rows = []
    for peer in peers:
        for reset in ("zero", "subtract"):
            for name, (build, features) in architectures(reset).items():
                row = {"architecture": name, **compare(peer, build, features, reset)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if "snntorch" in peers:
        rows.append({"architecture": "Synaptic + Leaky feed-forward", **snntorch_to_snnkit()})
        print(json.dumps(rows[-1]), flush=True)
    trained = []
    for checkpoint in args.checkpoint:
        trained.append(evaluate(checkpoint, peers))
        print(json.dumps(trained[-1]), flush=True)
    payload = {
        "versions": versions(),
        "missing_peers": missing,
        "agreement": rows,
        "trained": trained,
        "machine": machine_info(),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3]
        if Path("/proc/loadavg").exists()
        else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
