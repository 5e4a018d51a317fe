"""``--grad eest``: exact error backpropagation through spikes (Bacho & Chu, arXiv 2212.09500)."""

from __future__ import annotations

from snnkit.errors import SnnkitError
from snnkit.event_nets import EventMethod, event_layers, readout_kernel
from snnkit.neurons import LIF, NeuronSpec
from snnkit_eest.forward import LayerConfig
from snnkit_eest.network import EESTNetwork

__all__ = ["EEST"]

_OPTIONS = (
    "backend",
    "max_spikes",
    "single_spike",
    "weight_mean",
    "weight_std",
    "output_weight_mean",
    "output_weight_std",
)


class EEST(EventMethod):
    """Closed-form spike times (tau_m = 2 tau_s), explicit chain rule backward (docs/methods/eest.md)."""

    name = "eest"
    summary = (
        "EEST: exact backprop through multi-spike LIF spike times (closed form, tau_m = 2 tau_s)"
    )
    paper = "Bacho & Chu, arXiv 2212.09500 (2022)"
    version = "1"
    exact = True
    devices = ("cpu", "cuda")
    # Yin-Yang: the recipe's tau_mem 20 ms with tau_syn 10 ms (tau_m = 2 tau_s); spiking
    # output, first-spike loss (docs/methods/eest.md "Learning results")
    run_defaults = {
        "neuron_options": {"lif": {"tau_mem": 20.0, "tau_syn": 10.0}},
        "events": {
            "readout": "spiking",
            "loss": "first_spike_exp",
            "lr": 5e-4,
            "layer_options": {},
        },
    }

    def supports(self, neuron: NeuronSpec) -> str | None:
        reason = super().supports(neuron)
        if reason is not None:
            return reason
        if abs(neuron.tau_mem - 2.0 * neuron.tau_syn) > 1e-12 * neuron.tau_mem:
            return (
                f"needs tau_mem = 2 tau_syn for the closed-form spike time, got "
                f"tau_mem={neuron.tau_mem:g}, tau_syn={neuron.tau_syn:g}"
            )
        return None

    def layer(self, neuron, in_features, out_features, *, recurrent=False, **options):
        """A feed-forward layer (:meth:`snnkit.event_nets.EventMethod.layer`)."""
        if recurrent:
            raise SnnkitError("eest: recurrent layers are not implemented (feed-forward only)")
        return super().layer(neuron, in_features, out_features, **options)

    def network(
        self,
        shape,
        neuron,
        *,
        readout=None,
        recurrent=False,
        surrogate=None,
        backend: str = "auto",
        max_spikes: int = 64,
        single_spike: bool = False,
        weight_mean: float = 0.5,
        weight_std: float = 0.5,
        output_weight_mean: float | None = None,
        output_weight_std: float | None = None,
        **options,
    ) -> EESTNetwork:
        """Layers for ``shape`` ("5-200-3"); options: ``backend`` ("auto" | "cuda" |
        "cpu" | "torch", see :func:`snnkit.kernels.select`), ``max_spikes`` (per neuron and sample), ``single_spike`` (each neuron
        fires at most once: later crossings are not spikes), weight init
        ``weight_mean``/``weight_std`` (the ``output_`` ones for the last layer)."""
        if options:
            raise SnnkitError(
                f"--grad eest: unknown option(s) {', '.join(sorted(options))}; "
                f"known: {', '.join(_OPTIONS)}"
            )
        self.check(neuron)
        if recurrent:
            raise SnnkitError("eest: recurrent layers are not implemented (feed-forward only)")
        if not isinstance(max_spikes, int) or isinstance(max_spikes, bool) or max_spikes < 1:
            raise SnnkitError(f"max_spikes must be a positive integer, got {max_spikes!r}")
        hidden, output, readout = event_layers(
            shape,
            neuron,
            readout,
            weight_mean=weight_mean,
            weight_std=weight_std,
            output_weight_mean=output_weight_mean,
            output_weight_std=output_weight_std,
        )
        limit = 1 if single_spike else 0
        configs = [_config(neuron, max_spikes, limit, f"layer {k}") for k in range(len(hidden))]
        if readout.spiking:
            self.check(readout)
            configs.append(_config(readout, max_spikes, limit, "output layer"))
        kernel = readout_kernel(readout, neuron)
        return EESTNetwork(hidden, output, configs, kernel, backend)


def _config(neuron: LIF, max_spikes: int, limit: int, name: str) -> LayerConfig:
    return LayerConfig(
        tau=float(neuron.tau_mem),
        threshold=float(neuron.threshold),
        duration=1.0,  # replaced by the input's duration at each call
        max_spikes=max_spikes,
        name=name,
        spike_limit=limit,
    )
