"""The EXODUS gradient method: an autograd Function per layer, no per-step graph."""

from __future__ import annotations

import torch

from snnkit import GradientMethod, host, kernels
from snnkit.errors import SnnkitError
from snnkit.events import check_raster
from snnkit.neurons import LIFCoefficients, LIFState
from snnkit.nn import SpikingLayer, SpikingNeuron
from snnkit_exodus import cuda, scan
from snnkit_exodus.scan import OutputGrads, ScanConfig

BACKENDS = ("cuda", "cpu", "torch")


@host.probed("EXODUS")
def _host_works():
    """One step of one neuron through the CPU drivers."""
    x = torch.zeros(1, 1, 1)
    one = torch.ones(1)
    config = ScanConfig(None, None, False, False)
    cuda.forward_scan(
        cuda.HOST, x, LIFState(x[0], None, x[0]), LIFCoefficients(one, None, one, one), config
    )


def _kernels(x: torch.Tensor, c: LIFCoefficients, w_rec, config: ScanConfig):
    """The compiled kernels for this call (:func:`snnkit.kernels.select`), None for torch."""
    return kernels.select(
        x,
        config.backend,
        "exodus",
        cuda=cuda.CUDA,
        cpu=cuda.HOST,
        cpu_works=_host_works,
        unfit=kernels.columns_unfit(x, c, w_rec),
    )


def _gradients(v_all, state: LIFState, c: LIFCoefficients, w_rec, config: ScanConfig, needs, grads):
    """The reverse scan's gradients for (current, v0, i0, a0, alpha, beta, theta, m, w_rec)
    given the saved membrane and which of (v0, i0, a0, alpha, beta, theta, m, w_rec) need one."""
    need = {
        "alpha": needs[3],
        "beta": needs[4],
        "theta": needs[5] or (config.m_is_theta and needs[6]),
        "w_rec": needs[7],
    }
    synaptic = c.beta is not None
    if not synaptic:
        grads = grads._replace(i=None)
    with torch.no_grad():
        backend = _kernels(v_all, c, w_rec, config)
        if backend is None:
            g = scan.reverse_scan(v_all, grads, state, c, w_rec, config, need)
        else:
            g = cuda.reverse_scan(backend, v_all, grads, state, c, config, need)

    def per_neuron(x):
        return None if x is None else x.sum(0)

    return (
        g["current"],
        g["v0"],
        g["i0"] if synaptic else None,
        g["a0"],
        per_neuron(g["alpha"]),
        per_neuron(g["beta"]),
        per_neuron(g["theta"]),
        None,
        g["w_rec"],
    )


def _forward(current, state: LIFState, c: LIFCoefficients, w_rec, config: ScanConfig):
    """(v_all, spikes, final state) of the layer on ``current`` from ``state``."""
    with torch.no_grad():
        backend = _kernels(current, c, w_rec, config)
        if backend is None:
            return scan.forward_scan(current, state, c, w_rec, config)
        return cuda.forward_scan(backend, current, state, c, config)


def _named(v0, i0, a0, alpha, beta, theta, m):
    return LIFState(v0, i0, a0), LIFCoefficients(alpha, beta, theta, m)


class ExodusFunction(torch.autograd.Function):
    """Whole-sequence LIF layer: saves the pre-reset membrane, runs the reverse scan.

    Inputs are flat (autograd tracks tensors, not tuples): current, the carried state
    (v0, i0, a0), the coefficients (alpha, beta, theta, m), w_rec and the :class:`ScanConfig`.
    """

    @staticmethod
    def forward(ctx, current, v0, i0, a0, alpha, beta, theta, m, w_rec, config):
        state, c = _named(v0, i0, a0, alpha, beta, theta, m)
        v_all, a_all, (vpost, i, a) = _forward(current, state, c, w_rec, config)
        ctx.config = config
        ctx.save_for_backward(v_all, v0, i0, a0, alpha, beta, theta, m, w_rec)
        return a_all, vpost, i if i is not None else current.new_zeros(0), a

    @staticmethod
    def backward(ctx, g_spikes, g_vpost, g_i, g_a):
        v_all, *tensors, w_rec = ctx.saved_tensors
        state, c = _named(*tensors)
        grads = _gradients(
            v_all,
            state,
            c,
            w_rec,
            ctx.config,
            ctx.needs_input_grad[1:9],
            OutputGrads(g_spikes, g_vpost, g_i, g_a),
        )
        return (*grads, None)


def _compact(x: torch.Tensor) -> torch.Tensor:
    """``x`` as uint8 when it holds only counts 0..255 (spike rasters: 1/4 of float32's
    bytes, converted back exactly), else ``x`` itself."""
    if x.is_floating_point() and bool(((x >= 0) & (x <= 255) & (x == x.round())).all()):
        return x.to(torch.uint8)
    return x


def _input_current(x, weight, bias):
    current = torch.matmul(x, weight.t())
    return current if bias is None else current + bias


class ExodusInputFunction(torch.autograd.Function):
    """Linear + LIF layer that saves only its input (``save="input"``): the backward
    recomputes the current (one matmul) and the membrane (one forward scan), so no
    ``[T, B, N]`` tensor of the layer is kept between forward and backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, v0, i0, a0, alpha, beta, theta, m, w_rec, config):
        state, c = _named(v0, i0, a0, alpha, beta, theta, m)
        with torch.no_grad():
            current = _input_current(x, weight, bias)
        _, a_all, (vpost, i, a) = _forward(current, state, c, w_rec, config)
        ctx.config, ctx.x_dtype = config, x.dtype
        ctx.save_for_backward(_compact(x), weight, bias, v0, i0, a0, alpha, beta, theta, m, w_rec)
        return a_all, vpost, i if i is not None else current.new_zeros(0), a

    @staticmethod
    def backward(ctx, g_spikes, g_vpost, g_i, g_a):
        x, weight, bias, *tensors, w_rec = ctx.saved_tensors
        state, c = _named(*tensors)
        x = x.to(ctx.x_dtype)
        with torch.no_grad():
            current = _input_current(x, weight, bias)
        v_all = _forward(current, state, c, w_rec, ctx.config)[0]
        del current
        g_current, *grads = _gradients(
            v_all,
            state,
            c,
            w_rec,
            ctx.config,
            ctx.needs_input_grad[3:11],
            OutputGrads(g_spikes, g_vpost, g_i, g_a),
        )
        needs = ctx.needs_input_grad
        with torch.no_grad():
            g_x = torch.matmul(g_current, weight) if needs[0] else None
            flat = g_current.reshape(-1, g_current.shape[-1])
            g_w = flat.t() @ x.reshape(-1, x.shape[-1]) if needs[1] else None
            g_b = flat.sum(0) if bias is not None and needs[2] else None
        return (g_x, g_w, g_b, *grads, None)


SAVES = ("v", "input")


class ExodusNeuron(SpikingNeuron):
    """LIF/IF neurons of any shape whose gradient is computed by EXODUS's reverse scan;
    the forward keeps the pre-reset membrane for the backward."""

    backends = BACKENDS

    def _state(self, like: torch.Tensor, state: LIFState):
        """The autograd Function's inputs after the current: state, coefficients, w_rec, config."""
        c = self.params.coefficients(like)
        config = ScanConfig(
            self.surrogate,
            self.neuron.max_spikes,
            self.neuron.multi_spike,
            self.neuron.subtract is None,
            self.backend,
        )
        return (*state, *c, self.recurrent_weight, config)

    def dynamics(self, current: torch.Tensor, state: LIFState):
        spikes, vpost, i, a = ExodusFunction.apply(current, *self._state(current, state))
        return spikes, LIFState(vpost, i if state.i is not None else None, a)


class ExodusInputLayer(SpikingLayer):
    """Dense + EXODUS LIF layer that keeps only its input (as uint8 for spike counts) and
    recomputes the current and membrane in the backward (``--layer-opt save=input``):
    less memory for one more matmul and forward scan per backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_raster(x, f"input of {type(self).__name__}", self.in_features)
        neurons = self.neurons
        state = neurons.initial_state(x.new_empty(x.shape[0], x.shape[1], self.out_features))
        like = x.new_empty(0)  # parameters in the input's dtype and device
        spikes, vpost, i, a = ExodusInputFunction.apply(
            x, self.synapse.weight, self.synapse.bias, *neurons._state(like, state)
        )
        neurons.state = LIFState(vpost, i if state.i is not None else None, a)
        return spikes


class Exodus(GradientMethod):
    """EXODUS: BPTT with the reset gradient through, from an O(T) reverse scan."""

    name = "exodus"
    summary = "EXODUS: exact BPTT gradients (reset through) by an O(T) reverse scan, no graph"
    paper = "Bauer, Lenz, Haghighatshoar & Sheik, EXODUS, Frontiers in Neuroscience 2023 (arXiv 2205.10242)"
    version = "2"
    representation = "raster"
    oracle = "bptt"
    exact = True
    neurons = ("lif", "if")

    def supports(self, neuron):
        reason = super().supports(neuron)
        if reason is None and neuron.reset != "subtract":
            return "EXODUS needs reset='subtract' (its backward assumes a subtractive reset)"
        return reason

    def neuron(self, spec, shape=None, *, surrogate=None, recurrent=False, **options):
        self.check(spec)
        return ExodusNeuron(spec, shape, surrogate=surrogate, recurrent=recurrent, **options)

    def layer(self, neuron, in_features, out_features, *, save: str = "v", **options):
        """Dense + EXODUS neurons; ``save="input"`` fuses them to keep only the input."""
        if save not in SAVES:
            raise SnnkitError(f"--layer-opt save={save!r}: use one of {', '.join(SAVES)}")
        if save == "v":
            return super().layer(neuron, in_features, out_features, **options)
        self.check(neuron)
        return ExodusInputLayer.of(self, neuron, in_features, out_features, **options)
