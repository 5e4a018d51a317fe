"""NIR export and import (snnkit.nir): the round trip is exact for every supported
architecture and every raster method; what NIR cannot express is a one-line error."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from snnkit import IF, LI, LIF, SnnkitError, get_registry
from snnkit import arch as arch_mod
from snnkit.neurons import ALIF
from snnkit.nn import Network, NeuronParameters, Readout, TimeDistributed

nir = pytest.importorskip("nir", reason="the optional extra 'nir' is not installed")
from snnkit import nir as snir  # noqa: E402

T, B = 30, 4


def _dense(method, neuron, readout=None, **options):
    return method.network("6-14-9-3", neuron, readout=readout, weight_gain=4.0, **options)


def _conv(method, neuron, spec, shape):
    layers = arch_mod.parse(spec)
    return arch_mod.build(layers, method, neuron, input_shape=shape, num_classes=3, weight_gain=4.0)


# name -> (builder(method), input features)
ARCHITECTURES = {
    "dense-lif-bias": (lambda m: _dense(m, LIF(tau_mem=10.0), bias=True), (6,)),
    "dense-cuba-trained": (
        lambda m: _dense(
            m,
            LIF(tau_mem=12.0, tau_syn=4.0, threshold=0.8),
            readout=LI(tau_mem=8.0, tau_syn=3.0),
            train_tau=True,
            train_threshold=True,
        ),
        (6,),
    ),
    "recurrent-cuba": (lambda m: _dense(m, LIF(tau_mem=10.0, tau_syn=5.0), recurrent=True), (6,)),
    "if-spiking-readout": (lambda m: _dense(m, IF(threshold=1.5), readout=IF(threshold=1.5)), (6,)),
    "lif-reset-zero": (
        lambda m: _dense(m, LIF(tau_mem=10.0, reset="zero"), readout=LIF(reset="zero")),
        (6,),
    ),
    "conv2d": (
        lambda m: _conv(m, LIF(tau_mem=10.0, tau_syn=5.0), "4c3-a2-6c3p1-f-12-3", (2, 8, 8)),
        (2, 8, 8),
    ),
    "conv1d": (lambda m: _conv(m, LIF(tau_mem=10.0), "4c3s2-8-3", (12,)), (12,)),
}


def _raster_methods():
    """snnkit's raster methods (the peers plugin's libraries are compared with the oracle in
    docs/results.md, not required to give identical spikes: snntorch resets twice at 2θ)."""
    reg = get_registry()
    return [
        reg.gradient(n)
        for n in reg.available("gradient")
        if reg.gradient(n).representation == "raster"
        and not type(reg.gradient(n)).__module__.startswith("snnkit_peers")
    ]


def _perturb(network: nn.Module) -> None:
    """Trained quantities away from their initial value, different per neuron."""
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, NeuronParameters):
                for name in module.initial:
                    p = getattr(module, name)
                    p.mul_(1 + 0.3 * torch.rand_like(p))


def _run(network, x):
    network.reset_state()
    out = network(x)
    return out.output, out.hidden_spikes


def _same(a, b):
    (out_a, hid_a), (out_b, hid_b) = a, b
    assert len(hid_a) == len(hid_b)
    for s, t in zip(hid_a, hid_b, strict=True):
        assert torch.equal(s, t)
    assert torch.equal(out_a, out_b)


def _source(build, method, shape, seed=0):
    torch.manual_seed(seed)
    network = build(method).double()
    _perturb(network)
    x = (torch.rand(T, B, int(np.prod(shape)), dtype=torch.float64) < 0.3).double()
    return network, x


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_round_trip_is_exact_for_every_raster_method(name, tmp_path):
    build, shape = ARCHITECTURES[name]
    ran = []
    for method in _raster_methods():
        try:
            network, x = _source(build, method, shape)
        except SnnkitError:
            continue  # the method does not simulate these neurons (e.g. EXODUS: reset zero)
        want = _run(network, x)
        assert sum(h.sum().item() for h in want[1]) > 0, "a test without spikes proves nothing"
        path = tmp_path / f"{method.name}.nir"
        nir.write(path, snir.export(network))
        loaded = snir.load(path, method.name)
        assert all(p.dtype == torch.float64 for p in loaded.parameters())
        _same(want, _run(loaded, x))
        ran.append(method.name)
    assert ran, f"no raster method simulates {name}"
    if name in ("dense-lif-bias", "recurrent-cuba", "conv2d"):  # subtract-reset LIF
        assert {"bptt", "bptt-detached-reset", "exodus", "rouser"} <= set(ran), ran


def test_a_graph_moves_between_methods(tmp_path):
    """Exported from BPTT, loaded into each other raster method: the same spikes."""
    build, shape = ARCHITECTURES["dense-lif-bias"]
    network, x = _source(build, get_registry().gradient("bptt"), shape)
    want = _run(network, x)
    graph = snir.export(network)
    for method in _raster_methods():
        _same(want, _run(snir.load(graph, method.name), x))


def test_the_euler_scheme_reproduces_the_decays():
    """Written for a forward-Euler reader: tau = dt/(1 - exp(-dt/tau_snnkit)); read back
    the same way it is the same network (the decays agree to rounding)."""
    build, shape = ARCHITECTURES["dense-cuba-trained"]
    network, x = _source(build, get_registry().gradient("bptt"), shape)
    graph = snir.export(network, scheme="euler", time_step=1e-4)
    lif = graph.nodes["0.neurons"]
    assert np.allclose(
        1 - 1e-4 / lif.tau_mem, np.exp(-1.0 / network[0].params.value("tau_mem").detach().numpy())
    )
    assert np.allclose(lif.r * 1e-4 / lif.tau_mem, 1.0) and np.allclose(
        lif.w_in * 1e-4 / lif.tau_syn, 1.0
    )
    out, hidden = _run(snir.load(graph, "bptt"), x)
    want_out, want_hidden = _run(network, x)
    for s, t in zip(want_hidden, hidden, strict=True):
        assert torch.equal(s, t)
    torch.testing.assert_close(out, want_out, rtol=1e-12, atol=1e-12)


def test_the_mapping_is_the_documented_one():
    torch.manual_seed(0)
    bptt = get_registry().gradient("bptt")
    network = bptt.network("3-4-2", LIF(tau_mem=10.0, tau_syn=5.0, threshold=0.7, dt=0.5))
    graph = snir.export(network)
    node = graph.nodes["0.neurons"]
    assert isinstance(node, nir.CubaLIF)
    assert np.all(node.tau_mem == 10.0) and np.all(node.tau_syn == 5.0)
    assert np.all(node.r == 20.0) and np.all(node.w_in == 10.0)  # tau / dt: input unscaled
    assert (
        np.all(node.v_threshold == 0.7) and np.all(node.v_reset == 0) and np.all(node.v_leak == 0)
    )
    readout = graph.nodes["1.neurons"]
    assert isinstance(readout, nir.LI) and np.all(readout.r == readout.tau / 0.5)
    assert isinstance(graph.nodes["0.synapse"], nir.Linear)
    ms = snir.export(network, time_step=1e-3)  # the same network in seconds
    assert np.allclose(ms.nodes["0.neurons"].tau_mem, 10.0 * 1e-3 / 0.5)
    assert isinstance(snir.export(bptt.network("3-4-2", IF())).nodes["0.neurons"], nir.IF)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda m: m.network("3-4-2", LIF(multi_spike=True)), "multi_spike"),
        (lambda m: m.network("3-4-2", LIF(subtract=0.5)), "subtracts 0.5"),
        (lambda m: m.network("3-4-2", IF(tau_syn=5.0)), "current-based IF"),
        (lambda m: m.network("3-4-2", ALIF()), "'alif' neurons"),
        (
            lambda m: arch_mod.build(
                arch_mod.parse("2c3-m2-3"), m, LIF(), input_shape=(1, 8, 8), num_classes=3
            ),
            "MaxPool2d",
        ),
        (
            lambda m: arch_mod.build(
                arch_mod.parse("2c3-bn-3"), m, LIF(), input_shape=(1, 8, 8), num_classes=3
            ),
            "BatchNorm2d",
        ),
    ],
)
def test_what_nir_cannot_express_is_one_line(make, words):
    network = make(get_registry().gradient("bptt"))
    with pytest.raises(SnnkitError, match=words) as info:
        snir.export(network)
    assert "\n" not in str(info.value)


def _graph(*nodes):
    names = [f"n{k}" for k in range(len(nodes))]
    edges = list(zip(["input", *names], [*names, "output"], strict=True))
    shape = np.array([3])
    all_nodes = {"input": nir.Input({"input": shape}), "output": nir.Output({"output": shape})}
    all_nodes.update(dict(zip(names, nodes, strict=True)))
    return nir.NIRGraph(nodes=all_nodes, edges=edges, metadata={}, type_check=False)


def test_load_names_an_unsupported_node():
    lif = nir.LIF(
        tau=np.full(3, 10.0), r=np.full(3, 10.0), v_leak=np.zeros(3), v_threshold=np.ones(3)
    )
    graph = _graph(nir.Linear(weight=np.eye(3)), lif, nir.Delay(delay=np.ones(3)))
    with pytest.raises(SnnkitError, match="NIR node 'n2' is a Delay") as info:
        snir.load(graph, "bptt")
    assert "\n" not in str(info.value)


def test_load_refuses_what_snnkit_neurons_cannot_do():
    def lif(**changes):
        p = dict(
            tau=np.full(3, 10.0), r=np.full(3, 10.0), v_leak=np.zeros(3), v_threshold=np.ones(3)
        )
        p.update(changes)
        return _graph(nir.Linear(weight=np.eye(3)), nir.LIF(**p))

    for changes, words in [
        ({"v_leak": np.full(3, 0.1)}, "nonzero v_leak"),
        ({"v_reset": np.full(3, -0.5)}, "nonzero v_reset"),
        ({"r": np.array([10.0, 10.0, 3.0])}, "r != tau/time_step"),
    ]:
        with pytest.raises(SnnkitError, match=words):
            snir.load(lif(**changes), "bptt")
    with pytest.raises(SnnkitError, match="event method"):
        snir.load(lif(), "eventprop")
    with pytest.raises(SnnkitError, match="reset='subtract'"):  # EXODUS: reset zero asked for
        snir.load(lif(), "exodus", reset="zero")


def test_a_foreign_graph_loads_with_its_step_and_nested_recurrence():
    """snntorch's layout: a recurrent population as a nested 4-node graph, tau in units
    where one step is 1e-4, r = tau/1e-4; read as forward Euler it is beta = 1 - dt/tau."""
    n = 4
    beta = np.array([0.9, 0.8, 0.95, 0.7])
    tau = 1e-4 / (1 - beta)
    lif = nir.LIF(tau=tau, r=tau / 1e-4, v_leak=np.zeros(n), v_threshold=np.full(n, 0.5))
    rec = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([n])}),
            "lif": lif,
            "w_rec": nir.Linear(weight=np.full((n, n), 0.1)),
            "output": nir.Output({"output": np.array([n])}),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        metadata={},
        type_check=False,
    )
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([3])}),
            "fc": nir.Affine(weight=np.ones((n, 3)), bias=np.zeros(n)),
            "rlif": rec,
            "output": nir.Output({"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "rlif"), ("rlif", "output")],
        metadata={},
        type_check=False,
    )
    network = snir.load(graph, "bptt", scheme="euler", reset="zero")
    neurons = network[0].neurons
    assert neurons.recurrent and neurons.neuron.reset == "zero" and neurons.neuron.dt == 1e-4
    alpha = neurons.params.coefficients(torch.zeros((), dtype=torch.float64)).alpha
    np.testing.assert_allclose(alpha.detach().numpy(), beta, rtol=1e-12)


def test_without_the_extra_export_is_one_line(monkeypatch):
    from typer.testing import CliRunner

    from snnkit.cli import app

    monkeypatch.setitem(sys.modules, "nir", None)  # import nir -> ImportError
    with pytest.raises(SnnkitError, match=r"optional extra 'nir'"):
        snir.export(Network(Readout(3, 2)))
    result = CliRunner().invoke(app, ["export", "whatever", "model.nir"])
    assert result.exit_code == 2
    assert "optional extra 'nir'" in result.output and "Traceback" not in result.output


def test_snnkit_imports_without_nir():
    import subprocess

    code = (
        "import sys; sys.modules['nir'] = None; import snnkit, snnkit.cli, snnkit.nir; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_time_distributed_unflatten_round_trips_flat_input():
    build, shape = ARCHITECTURES["conv2d"]
    network, _ = _source(build, get_registry().gradient("bptt"), shape)
    graph = snir.export(network)
    assert list(graph.nodes["input"].input_type["input"]) == [2, 8, 8]
    loaded = snir.load(graph, "bptt")
    assert isinstance(loaded[0], TimeDistributed) and isinstance(loaded[0].module, nn.Unflatten)


def test_an_event_network_does_not_export():
    eventprop = get_registry().gradient("eventprop")
    network = eventprop.network("3-4-2", LIF(tau_mem=20.0, tau_syn=5.0))
    with pytest.raises(SnnkitError, match="event networks do not export"):
        snir.export(network)


def test_snnkit_export_writes_the_trained_network(tmp_path, monkeypatch):
    """A real run, exported by run id and by folder: the file loads into the network the
    checkpoint holds (same outputs); a wrong source is one line, exit 2."""
    from fixtures.cli import cli_invoker

    from snnkit.train import trained_model

    invoke = cli_invoker(monkeypatch, tmp_path)
    tiny = ["--hidden", "8", "--data-opt", "size=64", "--batch-size", "32", "--no-progress"]
    run = invoke("run", "--grad", "bptt", "--epochs", "1", *tiny, "--db", "r.db", "--out", "r")
    assert run.exit_code == 0, run.output
    result = invoke("export", "1", "model.nir", "--db", "r.db")
    assert result.exit_code == 0, result.output
    assert "wrote model.nir" in result.output
    assert invoke("export", "r", "folder.nir").exit_code == 0
    want = trained_model(tmp_path / "r" / "checkpoint.pt")
    x = (torch.rand(20, 3, 5) < 0.3).float()  # Yin-Yang: 4 features and a bias input
    for name in ("model.nir", "folder.nir"):
        got = snir.load(tmp_path / name, "bptt")
        _same(_run(want, x), _run(got, x))
    bad = invoke("export", "7", "x.nir", "--db", "r.db")
    assert bad.exit_code == 2 and "no run with id 7" in bad.output
    assert not (tmp_path / "x.nir").exists()
