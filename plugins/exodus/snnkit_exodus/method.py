"""The EXODUS gradient method: an autograd Function per layer, no per-step graph."""

from __future__ import annotations

import functools
import warnings

import torch

from snnkit import LIF, GradientMethod
from snnkit.errors import SnnkitError
from snnkit.nn import LIFState, SpikingLayer
from snnkit_exodus import cuda, scan


def _backend(current: torch.Tensor, w_rec):
    """Compiled kernels for feed-forward layers (CuPy on CUDA, C++ on the CPU) when they can
    run here, else the torch scan (recurrent layers: always the torch scan)."""
    if w_rec is None:
        if current.is_cuda and cuda.available():
            return cuda.CUDA
        if current.device.type == "cpu" and _host_works():
            return cuda.HOST
    return scan


@functools.cache
def _host_works() -> bool:
    """The CPU kernels build here (probed once; a failure falls back to torch with a warning)."""
    if not cuda.host_available():
        return False
    try:
        cuda.HOST.forward_scan(*_probe())
    except SnnkitError as exc:
        warnings.warn(f"EXODUS CPU kernels unavailable, using the torch scan: {exc}", stacklevel=3)
        return False
    return True


def _probe():
    x = torch.zeros(1, 1, 1)
    one = torch.ones(1)
    return x, x[0], None, x[0], one, None, one, one, None, None, False


class ExodusFunction(torch.autograd.Function):
    """Whole-sequence LIF layer: saves the pre-reset membrane, runs the reverse scan."""

    @staticmethod
    def forward(ctx, current, v0, i0, a0, alpha, beta, theta, m, w_rec, config):
        surrogate, max_spikes, multi, m_is_theta = config
        with torch.no_grad():
            v_all, a_all, (vpost, i, a) = _backend(current, w_rec).forward_scan(
                current, v0, i0, a0, alpha, beta, theta, m, w_rec, max_spikes, multi
            )
        ctx.config = config
        ctx.save_for_backward(v_all, v0, i0, a0, alpha, beta, theta, m, w_rec)
        return a_all, vpost, i if i is not None else current.new_zeros(0), a

    @staticmethod
    def backward(ctx, g_spikes, g_vpost, g_i, g_a):
        v_all, v0, i0, a0, alpha, beta, theta, m, w_rec = ctx.saved_tensors
        surrogate, max_spikes, multi, m_is_theta = ctx.config
        need = {
            "alpha": ctx.needs_input_grad[4],
            "beta": ctx.needs_input_grad[5],
            "theta": ctx.needs_input_grad[6] or (m_is_theta and ctx.needs_input_grad[7]),
            "w_rec": ctx.needs_input_grad[8],
        }
        synaptic = beta is not None
        with torch.no_grad():
            g = _backend(v_all, w_rec).reverse_scan(
                v_all,
                g_spikes,
                g_vpost,
                g_i if synaptic else None,
                g_a,
                v0,
                i0,
                a0,
                alpha,
                beta,
                theta,
                m,
                w_rec,
                surrogate,
                max_spikes,
                multi,
                need,
                m_is_theta,
            )

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
            None,
        )


class ExodusLayer(SpikingLayer):
    """A LIF/IF layer whose gradient is computed by EXODUS's reverse scan."""

    def dynamics(self, current: torch.Tensor, state: LIFState):
        p = self.params
        m_is_theta = p.fixed_subtract is None
        theta = p.theta(current)
        m = theta if m_is_theta else p.reset_amount(current)
        config = (self.surrogate, self.neuron.max_spikes, self.neuron.multi_spike, m_is_theta)
        spikes, vpost, i, a = ExodusFunction.apply(
            current,
            state.v,
            state.i,
            state.a,
            p.alpha(current),
            p.beta(current),
            theta,
            m,
            self.recurrent_weight,
            config,
        )
        return spikes, LIFState(vpost, i if state.i is not None else None, a)


class Exodus(GradientMethod):
    """EXODUS: BPTT with the reset gradient through, from an O(T) reverse scan."""

    name = "exodus"
    summary = "EXODUS: exact BPTT gradients (reset through) by an O(T) reverse scan, no graph"
    paper = "Bauer, Lenz, Haghighatshoar & Sheik, EXODUS, Frontiers in Neuroscience 2023 (arXiv 2205.10242)"
    version = "1"
    representation = "raster"
    oracle = "bptt"
    exact = True
    neurons = ("lif", "if")

    def supports(self, neuron):
        if not isinstance(neuron, LIF):
            return "EXODUS simulates LIF/IF hidden layers"
        if neuron.reset != "subtract":
            return "EXODUS needs reset='subtract' (its backward assumes a subtractive reset)"
        return None

    def layer(
        self, neuron, in_features, out_features, *, recurrent=False, surrogate=None, **options
    ):
        self.check(neuron)
        return ExodusLayer(
            neuron, in_features, out_features, recurrent=recurrent, surrogate=surrogate, **options
        )
