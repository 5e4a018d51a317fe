"""The SLAYER gradient method: layers for LIF kernels and general SRM kernels."""

from __future__ import annotations

import torch

from snnkit import GradientMethod, SnnkitError
from snnkit.neurons import LIFState
from snnkit.nn import SpikingNeuron
from snnkit.surrogates import Exponential, Surrogate
from snnkit_slayer.backend import BACKENDS
from snnkit_slayer.lif import LIFConfig, SlayerLIFFunction
from snnkit_slayer.neuron import SRM
from snnkit_slayer.srm import SlayerSRMFunction, SRMConfig, SRMState

SURROGATE_AT = ("pre-reset", "post-reset")
FILTERS = ("auto", "conv", "fft")


class _SlayerNeuron(SpikingNeuron):
    """Options shared by both populations: where the surrogate is evaluated, how to filter."""

    backends = BACKENDS

    def __init__(
        self,
        *args,
        surrogate_at: str = "pre-reset",
        filter: str = "auto",  # noqa: A002 - the option's user-facing name
        **kwargs,
    ) -> None:
        if kwargs.get("recurrent"):
            raise SnnkitError(
                "--grad slayer builds feed-forward layers (the SRM filters a given input); "
                "use --grad bptt-detached-reset or exodus for --recurrent"
            )
        if surrogate_at not in SURROGATE_AT:
            raise SnnkitError(
                f"surrogate_at={surrogate_at!r}: the surrogate is evaluated 'pre-reset' "
                "(default) or 'post-reset'; choose one of those"
            )
        if filter not in FILTERS:
            raise SnnkitError(
                f"filter={filter!r}: temporal filtering is 'auto' (by kernel length), "
                "'conv' or 'fft'; choose one of those"
            )
        super().__init__(*args, **kwargs)
        self.post_reset = surrogate_at == "post-reset"
        self.filter = filter

    def extra_repr(self) -> str:
        at = "post-reset" if self.post_reset else "pre-reset"
        return f"{super().extra_repr()}, surrogate at {at}, filter={self.filter}"


class SlayerNeuron(_SlayerNeuron):
    """LIF/IF neurons (exponential kernels) trained with SLAYER's gradient."""

    def dynamics(self, current: torch.Tensor, state: LIFState):
        c = self.params.coefficients(current)
        m = None if self.neuron.subtract is None else c.m
        config = LIFConfig(
            self.surrogate,
            self.neuron.max_spikes,
            self.neuron.multi_spike,
            self.post_reset,
            self.filter,
            self.backend,
        )
        spikes, vpost, i, a = SlayerLIFFunction.apply(
            current, state.v, state.i, c.alpha, c.beta, c.theta, m, config
        )
        return spikes, LIFState(vpost, i if state.i is not None else None, a)


class SlayerSRMNeuron(_SlayerNeuron):
    """SRM neurons with SLAYER's alpha-shaped PSP and refractory kernels."""

    def __init__(self, neuron: SRM, *args, train_threshold: bool = False, **kwargs) -> None:
        if train_threshold or kwargs.get("train_tau") or kwargs.get("train"):
            raise SnnkitError(
                "--neuron srm has fixed kernels and threshold in SLAYER; train_tau and "
                "train_threshold are offered with --neuron lif"
            )
        super().__init__(neuron, *args, **kwargs)
        self._kernels: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def kernels(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(eps, nu) in ``like``'s dtype and device (computed once per dtype and device)."""
        key = (like.dtype, like.device)
        if key not in self._kernels:
            self._kernels[key] = (
                torch.tensor(self.neuron.psp_kernel(), dtype=like.dtype, device=like.device),
                torch.tensor(self.neuron.refractory_kernel(), dtype=like.dtype, device=like.device),
            )
        return self._kernels[key]

    def initial_state(self, current: torch.Tensor) -> SRMState:
        batch = current.shape[1]
        if self.state is None:
            return SRMState.empty(batch, current.shape[2], current)
        if self.state.batch != batch:
            raise SnnkitError(
                f"carried state has batch size {self.state.batch} but the input has "
                f"{batch}; call reset_state() before feeding a new batch"
            )
        return self.state

    def dynamics(self, current: torch.Tensor, state: SRMState):
        eps, nu = self.kernels(current)
        current_ext = torch.cat([state.current, current]) if len(state.current) else current
        config = SRMConfig(
            self.surrogate, self.post_reset, self.filter, len(state.current), self.backend
        )
        theta = self.params.coefficients(current)["threshold"]
        spikes = SlayerSRMFunction.apply(current_ext, state.spikes, eps, nu, theta, config)
        past = torch.cat([state.spikes, spikes.detach()])
        return spikes, SRMState(_last(current_ext, len(eps) - 1), _last(past, len(nu) - 1))


def _last(x: torch.Tensor, steps: int) -> torch.Tensor:
    """The last ``steps`` steps of ``x`` (all of it if shorter, none for 0)."""
    return x[max(0, len(x) - steps) :]


def rho(surrogate: Surrogate | None, scale_rho, tau_rho) -> Surrogate | None:
    """SLAYER's spike pdf: the ``exponential`` surrogate with width tau_rho, scale scale_rho."""
    if scale_rho is None and tau_rho is None:
        return surrogate
    if surrogate is not None and not isinstance(surrogate, Exponential):
        raise SnnkitError(
            f"scale_rho/tau_rho set SLAYER's spike pdf (the exponential surrogate), but the "
            f"surrogate is {surrogate.describe()}; use --surrogate exponential or drop them"
        )
    base = surrogate if surrogate is not None else Exponential()
    return Exponential(
        width=base.width if tau_rho is None else tau_rho,
        scale=base.scale if scale_rho is None else scale_rho,
    )


class Slayer(GradientMethod):
    """SLAYER: PSP filtering forward, temporal correlation backward, refractory path dropped."""

    name = "slayer"
    summary = "SLAYER: SRM layers, gradient by temporal correlation with the PSP kernel"
    paper = "Shrestha & Orchard, SLAYER: Spike Layer Error Reassignment in Time, NeurIPS 2018"
    version = "2"
    representation = "raster"
    oracle = "bptt-detached-reset"
    exact = False
    approximation = "the refractory/reset path of the gradient is dropped"
    neurons = ("lif", "if", "srm")

    def supports(self, neuron):
        reason = super().supports(neuron)
        if reason is None and neuron.kind != "srm" and neuron.reset != "subtract":
            return "a LIF neuron is an SRM only with reset='subtract' (a reset to zero is not a kernel)"
        return reason

    def neuron(
        self,
        spec,
        shape=None,
        *,
        surrogate=None,
        recurrent=False,
        scale_rho: float | None = None,
        tau_rho: float | None = None,
        **options,
    ):
        self.check(spec)
        surrogate = rho(surrogate, scale_rho, tau_rho)
        cls = SlayerSRMNeuron if spec.kind == "srm" else SlayerNeuron
        return cls(spec, shape, recurrent=recurrent, surrogate=surrogate, **options)
