"""The Rouser gradient method: trainable thresholds, one autograd Function per layer."""

from __future__ import annotations

import torch

from snnkit import GradientMethod, kernels
from snnkit.errors import SnnkitError
from snnkit.neurons import LIFState
from snnkit.nn import SpikingNeuron
from snnkit_rouser import cuda, scan
from snnkit_rouser.surrogate import RouserExponential

SHARING = ("neuron", "channel", "layer")
RESET_GRADS = ("detached", "through")


def _backend(current: torch.Tensor, params, w_rec, dyn: scan.Dynamics):
    """The scans for this call: the CUDA kernels' (module :mod:`snnkit_rouser.cuda`) or the
    torch ones (:mod:`snnkit_rouser.scan`), as :func:`snnkit.kernels.select` chooses."""
    unfit = kernels.columns_unfit(current, params, w_rec)
    return (
        cuda
        if kernels.select(current, dyn.backend, "rouser", cuda=cuda.CUDA, unfit=unfit)
        else scan
    )


class RouserFunction(torch.autograd.Function):
    """Whole-sequence LIF layer: saves the pre-reset membrane, backward is one reverse scan
    that also accumulates the threshold gradient."""

    @staticmethod
    def forward(ctx, current, v0, i0, a0, alpha, beta, theta, m, w_rec, config):
        surrogate, dyn = config
        with torch.no_grad():
            v_all, a_all, (u, i, a) = _backend(
                current, (alpha, beta, theta, m), w_rec, dyn
            ).forward_scan(current, v0, i0, a0, alpha, beta, theta, m, w_rec, dyn)
        ctx.config = config
        ctx.save_for_backward(v_all, v0, i0, a0, alpha, beta, theta, m, w_rec)
        return a_all, u, i if i is not None else current.new_zeros(0), a

    @staticmethod
    def backward(ctx, g_spikes, g_u, g_i, g_a):
        v_all, v0, i0, a0, alpha, beta, theta, m, w_rec = ctx.saved_tensors
        surrogate, dyn = ctx.config
        need = {
            "alpha": ctx.needs_input_grad[4],
            "beta": ctx.needs_input_grad[5],
            "theta": ctx.needs_input_grad[6] or (dyn.m_is_theta and ctx.needs_input_grad[7]),
            "w_rec": ctx.needs_input_grad[8],
        }
        with torch.no_grad():
            g = _backend(v_all, (alpha, beta, theta, m), w_rec, dyn).reverse_scan(
                v_all,
                g_spikes,
                g_u,
                g_i if beta is not None else None,
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
                dyn,
                need,
            )
        g_theta = g["theta"]
        if g_theta is not None:
            g_theta = g_theta.sum_to_size(theta.shape)  # per-layer sharing: theta is [1]
        return (
            g["current"],
            g["v0"],
            g["i0"],
            g["a0"],
            g["alpha"],
            g["beta"],
            g_theta,
            None,  # m is theta (its gradient is in g_theta) or a constant
            g["w_rec"],
            None,
        )


class RouserNeuron(SpikingNeuron):
    """LIF/IF neurons with a trainable threshold per neuron (or per channel, or one per
    population).

    Options beyond :class:`snnkit.nn.SpikingNeuron`'s: ``threshold_sharing`` ("neuron",
    "channel" or "layer"), ``reset_grad`` ("detached", the paper's choice, or "through"),
    and ``th_min`` (the threshold is projected onto ``[th_min, inf)`` before every forward
    pass).
    """

    backends = ("cuda", "torch")

    def __init__(
        self,
        neuron,
        shape=None,
        *,
        threshold_sharing: str = "neuron",
        reset_grad: str = "detached",
        th_min: float | None = None,
        **options,
    ) -> None:
        if threshold_sharing not in SHARING:
            raise SnnkitError(
                f"threshold_sharing must be one of {', '.join(SHARING)}, got {threshold_sharing!r}"
            )
        if reset_grad not in RESET_GRADS:
            raise SnnkitError(f"reset_grad must be 'detached' or 'through', got {reset_grad!r}")
        options.setdefault("train_threshold", True)  # the method is the trained threshold
        trainable = options["train_threshold"]
        if threshold_sharing != "neuron" and not trainable:
            raise SnnkitError(
                f"threshold_sharing={threshold_sharing!r} shares a trained threshold; add "
                "train_threshold=true"
            )
        if th_min is not None:
            if not (isinstance(th_min, int | float) and 0 < th_min < float("inf")):
                raise SnnkitError(f"th_min must be a positive number, got {th_min!r}")
            if not trainable:
                raise SnnkitError("th_min bounds a trained threshold; add train_threshold=true")
            if th_min > neuron.threshold:
                raise SnnkitError(
                    f"th_min={th_min} exceeds the initial threshold {neuron.threshold}; "
                    "lower th_min or raise the neuron's threshold"
                )
        options.setdefault("sharing", threshold_sharing)
        super().__init__(neuron, shape, **options)
        self.threshold_sharing, self.reset_grad, self.th_min = threshold_sharing, reset_grad, th_min

    def clamp_thresholds(self) -> None:
        """Project a trained threshold onto ``[th_min, inf)`` (no-op without ``th_min``)."""
        threshold = self.params._parameters.get("threshold")
        if self.th_min is not None and threshold is not None:
            with torch.no_grad():
                threshold.clamp_(min=self.th_min)

    def dynamics(self, current: torch.Tensor, state: LIFState):
        self.clamp_thresholds()
        neuron = self.neuron
        c = self.params.coefficients(current)
        m_is_theta = neuron.subtract is None
        dyn = scan.Dynamics(
            reset_zero=neuron.reset == "zero",
            through=self.reset_grad == "through",
            multi=neuron.multi_spike,
            max_spikes=neuron.max_spikes,
            m_is_theta=m_is_theta,
            backend=self.backend,
        )
        spikes, u, i, a = RouserFunction.apply(
            current,
            state.v,
            state.i,
            state.a,
            c.alpha,
            c.beta,
            c.theta,
            c.m,
            self.recurrent_weight,
            (self.surrogate, dyn),
        )
        return spikes, LIFState(u, i if state.i is not None else None, a)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, thresholds per {self.threshold_sharing}, "
            f"reset gradient {self.reset_grad}" + (f", th_min={self.th_min}" if self.th_min else "")
        )


class Rouser(GradientMethod):
    """Rouser: surrogate-gradient training with trainable thresholds (dS/dTh = -dS/dV)."""

    name = "rouser"
    summary = "Rouser: trainable per-neuron thresholds that revive dead neurons (reverse scan)"
    paper = (
        "Mahmoodi Takaghaj & Sampson, Rouser: Robust SNN training using adaptive threshold "
        "learning, arXiv 2407.19566 (2024)"
    )
    version = "2"
    representation = "raster"
    oracle = "bptt-detached-reset"
    exact = True
    devices = ("cpu", "cuda")
    neurons = ("lif", "if")
    # `snnkit run --grad rouser` uses the paper's surrogate unless told otherwise
    run_defaults = {"surrogate": RouserExponential.name}

    def neuron(self, spec, shape=None, *, surrogate=None, recurrent=False, **options):
        self.check(spec)
        return RouserNeuron(
            spec,
            shape,
            recurrent=recurrent,
            surrogate=surrogate if surrogate is not None else RouserExponential(),
            **options,
        )
