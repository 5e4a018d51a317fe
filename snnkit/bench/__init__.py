"""Speed and memory benchmarks of gradient methods against the BPTT baseline.

One measurement is a (method, :class:`BenchConfig`) pair: a forward pass producing
spikes ``[T, B, N]`` and the backward pass of ``(spikes * r).sum()`` for a fixed random
``r``. Two parts are timed:

``neuron``
    the LIF neurons alone (the method's neuron module), the input current
    ``[T, B, N]`` given and requiring grad;
``linear+lif``
    a whole :class:`~snnkit.nn.SpikingLayer` (``in = out = N``) fed random binary spikes,
    the gradient going to its weight.

``bptt`` is always measured in the same run, so every ratio comes from one run on one
machine (never from stored numbers). Per measurement we report the median forward,
backward and total time over ``repeats`` timed iterations (after ``warmup`` untimed
ones), the memory the autograd graph keeps for the backward pass (``saved_mb``: the
distinct storages packed by ``torch.autograd.graph.saved_tensors_hooks``; custom
autograd Functions show what they ``save_for_backward``), and on CUDA the peak
allocated memory of one iteration.

The engine (:mod:`snnkit.bench.engine`) measures; :mod:`snnkit.bench.rendering` shows and
stores the results (a rich table, JSON with the machine they were taken on).

Peer libraries (snntorch, norse, spikingjelly, sinabs) are methods of the bundled peers
plugin (``pip install 'snnkit[peers]'``), measured through the same neuron module as in
training and conformance; ``NAME:convention=library`` runs a peer with its library's
defaults instead of snnkit's LIF convention. A peer whose library is not installed is
recorded as skipped ("not installed"). None of them is a dependency of snnkit.
"""

from snnkit.bench.engine import (
    BASELINE,
    DEFAULT_CONFIGS,
    DEFAULT_SIZES,
    PARTS,
    PEERS,
    BenchConfig,
    BenchResult,
    method_options,
    run_bench,
)
from snnkit.bench.rendering import JSON_SCHEMA, from_json, machine_info, results_table, to_json

__all__ = [
    "BASELINE",
    "DEFAULT_CONFIGS",
    "DEFAULT_SIZES",
    "JSON_SCHEMA",
    "PARTS",
    "PEERS",
    "BenchConfig",
    "BenchResult",
    "from_json",
    "machine_info",
    "method_options",
    "results_table",
    "run_bench",
    "to_json",
]
