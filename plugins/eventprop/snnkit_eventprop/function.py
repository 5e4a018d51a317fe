"""One spiking layer as an autograd Function: event-exact forward, adjoint backward.

``spike_times(pre, weight, recurrent, config)`` returns the layer's spike times
``[B, N, K]``; its backward is :func:`snnkit_eventprop.adjoint.adjoint_layer`, never autograd
through the forward. Gradients reach the weights, the recurrent weights and the input spike
times, so layers (and any loss on spike times or on an LI readout) chain through autograd.
Layers, feed-forward and recurrent, run the compiled kernels (:mod:`snnkit_eventprop.cuda`):
CuPy on CUDA tensors when CuPy is present, the host C++ build on CPU tensors when a
compiler is (chosen by :func:`snnkit.kernels.select`; ``backend="torch"`` or
``SNNKIT_HOST_KERNELS=0`` opt out; a failed build falls back to torch with a warning).
``backend="torch"`` runs the torch path, the readable reference.
"""

from __future__ import annotations

import torch

from snnkit import host, kernels
from snnkit_eventprop import cuda
from snnkit_eventprop.adjoint import adjoint_layer
from snnkit_eventprop.regularise import count_regularised
from snnkit_eventprop.simulate import LayerConfig, LayerRecord, run_layer

__all__ = ["BACKENDS", "spike_times"]

BACKENDS = ("cuda", "cpu", "torch")


def _backend(pre: torch.Tensor, options: dict):
    """The compiled kernels for this layer (a :class:`snnkit.kernels.Backend`), or None for
    the torch path (chosen by :func:`snnkit.kernels.select`)."""
    return kernels.select(
        pre,
        options.get("backend", "auto"),
        "eventprop",
        cuda=cuda.CUDA,
        cpu=cuda.HOST,
        cpu_works=_host_works,
    )


@host.probed("EventProp")
def _host_works():
    """A one-neuron layer forward and backward through the CPU drivers."""
    config = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 1.0, 1)
    weight = torch.ones(1, 1)
    record = cuda.run_layer(cuda.HOST, torch.zeros(1, 1, 1), weight, config)
    cuda.adjoint_layer(cuda.HOST, record, torch.zeros_like(record.times), weight, config)


class _EventLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, weight, recurrent, config, options):
        backend = _backend(pre, options)
        if backend is not None:
            record = cuda.run(backend, pre, weight, recurrent, config)
        else:
            record = run_layer(pre, weight, recurrent, config)
        ctx.record, ctx.config, ctx.backend = record, config, backend
        ctx.pre_shape = pre.shape
        ctx.save_for_backward(weight, recurrent)
        if options.get("record") is not None:
            options["record"].append(record)
        return record.times.to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        weight, recurrent = ctx.saved_tensors
        record: LayerRecord = ctx.record
        grad = count_regularised(grad, record.times, record.currents, ctx.config)
        if ctx.backend is not None:
            d_arr, d_w, d_r = cuda.adjoint(ctx.backend, record, grad, weight, recurrent, ctx.config)
        else:
            d_arr, d_w, d_r = adjoint_layer(
                record, grad.to(record.times.dtype), weight, recurrent, ctx.config
            )
        d_pre = None
        if ctx.needs_input_grad[0]:  # arrivals in time order -> the input's slots (the
            # kernels' list drops the padding: slot 0 there, with a zero gradient)
            B, n_in, k_in = ctx.pre_shape
            d_pre = d_arr.new_zeros(B, n_in * k_in).scatter_add_(1, record.order, d_arr)
            d_pre = d_pre.view(ctx.pre_shape)
        return d_pre, d_w, d_r, None, None


def spike_times(
    pre: torch.Tensor,
    weight: torch.Tensor,
    recurrent: torch.Tensor | None,
    config: LayerConfig,
    **options,
) -> torch.Tensor:
    """Spike times ``[B, N, K]`` of a layer fed by ``pre [B, N_in, K_in]`` (differentiable)."""
    return _EventLayer.apply(pre, weight, recurrent, config, options)
