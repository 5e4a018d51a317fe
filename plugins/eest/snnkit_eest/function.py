"""One EEST layer as an autograd Function: closed-form forward, explicit chain-rule backward.

``spike_times(pre, weight, config)`` returns the layer's spike times ``[B, N, K]``; its
backward is :func:`snnkit_eest.backward.backward_layer` (or the same pass in the compiled
kernels), never autograd through the forward. Gradients reach the weights and the input
spike times, so layers and losses chain through autograd. Backends: CuPy kernels on CUDA
tensors when CuPy is present, the host C++ build on CPU tensors when a compiler is
(chosen by :func:`snnkit.kernels.select`; ``SNNKIT_HOST_KERNELS=0`` or ``backend="torch"`` opt out; a failed build falls back to
torch with a warning).
"""

from __future__ import annotations

import torch

from snnkit import host, kernels
from snnkit_eest import cuda
from snnkit_eest.backward import backward_layer
from snnkit_eest.forward import LayerConfig, run_layer

__all__ = ["spike_times"]

BACKENDS = ("cuda", "cpu", "torch")


def _backend(pre: torch.Tensor, options: dict):
    """The compiled kernels for this call (a :class:`snnkit.kernels.Backend`), None for torch."""
    return kernels.select(
        pre,
        options.get("backend", "auto"),
        "eest",
        cuda=cuda.CUDA,
        cpu=cuda.HOST,
        cpu_works=_host_works,
    )


@host.probed("EEST")
def _host_works():
    """A one-neuron layer forward and backward through the CPU drivers."""
    config = LayerConfig(10.0, 1.0, 1.0, 1)
    weight = torch.ones(1, 1)
    record = cuda.run_layer(cuda.HOST, torch.zeros(1, 1, 1), weight, config)
    cuda.backward_layer(cuda.HOST, record, torch.zeros_like(record.times), weight, config)


class _EESTLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, weight, config, options):
        backend = _backend(pre, options)
        if backend is not None:
            record = cuda.run_layer(backend, pre, weight, config)
        else:
            record = run_layer(pre, weight, config)
        ctx.record, ctx.config, ctx.backend = record, config, backend
        ctx.pre_shape = pre.shape
        ctx.save_for_backward(weight)
        return record.times.to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        record = ctx.record
        if ctx.backend is not None:
            d_arr, d_w = cuda.backward_layer(ctx.backend, record, grad, weight, ctx.config)
        else:
            d_arr, d_w = backward_layer(record, grad, weight, ctx.config)
        d_pre = None
        if ctx.needs_input_grad[0]:  # arrivals in time order -> the input's slots (the
            # kernels' list drops the padding: slot 0 there, with a zero gradient)
            B, n_in, k_in = ctx.pre_shape
            d_pre = d_arr.new_zeros(B, n_in * k_in).scatter_add_(1, record.order, d_arr)
            d_pre = d_pre.view(ctx.pre_shape).to(grad.dtype)
        return d_pre, d_w.to(weight.dtype), None, None


def spike_times(pre: torch.Tensor, weight: torch.Tensor, config: LayerConfig, **options):
    """Spike times ``[B, N, K]`` of a layer fed by ``pre [B, N_in, K_in]`` (differentiable)."""
    return _EESTLayer.apply(pre, weight, config, options)
