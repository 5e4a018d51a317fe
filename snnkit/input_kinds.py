"""What a run feeds its network and reads back, per input kind of its gradient method.

Raster methods (``representation = "raster"``) train on spike rasters ``[T, B, N]``
binned once at ``dt`` and build ``--arch`` networks of any layer kind; event methods
(``"events"``) train on the spike times themselves (:class:`snnkit.events.Events`) and
build fully connected networks whose outputs are spike times or a readout. The
:class:`~snnkit.train.Trainer` asks the run's :class:`InputKind` instead of branching on
the representation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from snnkit.errors import SnnkitError


class InputKind:
    """The input handling of one representation; ``dt`` is the run's time step (ms)."""

    name: ClassVar[str]

    def __init__(self, dt: float) -> None:
        self.dt = dt

    def prepare(self, dataset, device: torch.device, dtype: torch.dtype) -> Any:
        """A split's inputs, on ``device`` in ``dtype`` (kept there for the whole run)."""
        raise NotImplementedError

    def select(self, inputs: Any, index: torch.Tensor) -> Any:
        """The samples ``index`` of prepared inputs."""
        raise NotImplementedError

    def loss_input(self, output_kind: str) -> str:
        """What a network with output ``output_kind`` gives its loss (``Loss.input``)."""
        raise NotImplementedError

    def outputs(self, model: torch.nn.Module, out) -> tuple[Any, list[torch.Tensor]]:
        """What the loss reads from a forward's ``out``, and each hidden layer's spikes."""
        raise NotImplementedError

    def spike_stats(self, hidden: list[torch.Tensor]) -> tuple[list[float], list[float]]:
        """Per hidden layer: mean spikes per neuron per ``dt``, and the fraction of neurons
        that fired no spike over the batch."""
        raise NotImplementedError

    def network(self, method, layers, neuron, train, config, common: dict) -> torch.nn.Module:
        """The network of ``--arch`` ``layers`` (parsed) for the training split ``train``."""
        raise NotImplementedError


class RasterInputs(InputKind):
    """Spike rasters ``[T, B, N]``, batches along dimension 1."""

    name = "raster"

    def prepare(self, dataset, device, dtype):
        return dataset.raster(self.dt).to(device, dtype)

    def select(self, inputs, index):
        return inputs[:, index]

    def loss_input(self, output_kind):
        return output_kind

    def outputs(self, model, out):
        return out.output, out.hidden_spikes

    def spike_stats(self, hidden):
        rates, dead = [], []
        for s in hidden:
            rates.append(s.mean().item())
            dead.append((s.sum(dim=(0, 1)) == 0).to(torch.float64).mean().item())
        return rates, dead

    def network(self, method, layers, neuron, train, config, common):
        from snnkit import arch

        return arch.build(
            layers,
            method,
            neuron,
            input_shape=train.input_shape,
            num_classes=train.num_classes,
            **common,
            **config.layer_options,
        )


class EventInputs(InputKind):
    """Spike times (:class:`snnkit.events.Events`, ``[B, N, K]``), batches along dimension 0;
    rates are per ``dt`` over the duration of ``train``, the training split."""

    name = "events"

    def __init__(self, dt: float, train) -> None:
        super().__init__(dt)
        self.train = train

    def prepare(self, dataset, device, dtype):
        return dataset.events.to(device, dtype)

    def select(self, inputs, index):
        return inputs[index]

    def loss_input(self, output_kind):
        return {"spikes": "spike_times", "trace": "readout"}[output_kind]

    def outputs(self, model, out):
        if model.output_kind == "spikes":  # the last layer's spike times are the output
            return out.events(), out.spikes[:-1]
        return out.readout, out.spikes

    def spike_stats(self, hidden):
        steps = self.train.events.duration / self.dt
        rates, dead = [], []
        for t in hidden:
            counts = torch.isfinite(t).sum(dim=2)  # [B, N]
            rates.append(counts.to(torch.float64).mean().item() / steps)
            dead.append((counts.sum(dim=0) == 0).to(torch.float64).mean().item())
        return rates, dead

    def network(self, method, layers, neuron, train, config, common):
        from snnkit import arch

        if arch.has_convolutions(layers[:-1]):
            raise SnnkitError(
                f"--grad {config.grad} builds fully connected event networks; --arch "
                f"{config.arch} has convolution/pooling layers, which need a raster method "
                "(bptt, exodus, slayer, rouser)"
            )
        sizes = [train.num_inputs, *(layer.size for layer in layers)]
        common = {**common, "recurrent": config.recurrent or any(x.recurrent for x in layers)}
        return method.network(sizes, neuron, **common, **config.layer_options)


def input_kind(method, dt: float, train) -> InputKind:
    """The :class:`InputKind` of ``method``'s representation, for the training split ``train``."""
    if method.representation == "events":
        return EventInputs(dt, train)
    return RasterInputs(dt)
