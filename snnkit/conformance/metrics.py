"""How two gradients are compared: normwise max relative error, cosine, norm ratio."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Max relative error allowed, by (representation, dtype). Raster methods are compared with
# BPTT in the same dtype; event methods with central differences of the float64 exact
# simulation (so their float32 figure also carries float32 spike-time rounding).
TOLERANCES: dict[tuple[str, str], float] = {
    ("raster", "float64"): 1e-10,
    # float32: eps 6e-8; reverse scans over <= 64 steps with |factors| <= ~1 and surrogate
    # gains <= ~4 accumulate ~1e-6 relative; 1e-4 leaves margin yet catches every broken
    # method in tests/test_conformance.py (their errors are >= 1e-2).
    ("raster", "float32"): 1e-4,
    ("events", "float64"): 1e-6,
    # float32 spike times carry ~1e-7 relative error amplified by 1/(dV/dt) near threshold
    ("events", "float32"): 1e-3,
    # two exact event methods on the same network in float64 differ by rounding alone
    # (EventProp vs EEST: 4e-13 on 429 spikes); 1e-10 catches what finite differences
    # (1e-6) cannot resolve
    ("agreement", "float64"): 1e-10,
}


@dataclass(frozen=True)
class Comparison:
    max_rel_err: float
    cosine: float
    norm_ratio: float


def compare(grads: list[torch.Tensor], reference: list[torch.Tensor]) -> Comparison:
    """Compare gradient lists tensor by tensor.

    ``max_rel_err`` is the largest ``max|g - g_ref| / max|g_ref|`` over the tensors (an
    all-zero reference counts the absolute error); NaN entries of the reference (refused
    finite differences) are ignored. Cosine and norm ratio are over everything at once.
    """
    worst, dot, n_ref, n_got = 0.0, 0.0, 0.0, 0.0
    for g, r in zip(grads, reference, strict=True):
        g = g.detach().to(torch.float64).flatten()
        r = r.detach().to(torch.float64).flatten()
        keep = ~torch.isnan(r)
        g, r = g[keep], r[keep]
        if r.numel() == 0:
            continue
        if not torch.isfinite(g).all():
            return Comparison(math.inf, math.nan, math.nan)
        scale = r.abs().max().item()
        err = (g - r).abs().max().item()
        worst = max(worst, err / scale if scale > 0 else err)
        dot += (g * r).sum().item()
        n_ref += (r * r).sum().item()
        n_got += (g * g).sum().item()
    if n_ref == 0 and n_got == 0:
        return Comparison(worst, 1.0, 1.0)
    cosine = dot / math.sqrt(n_ref * n_got) if n_ref > 0 and n_got > 0 else 0.0
    ratio = math.sqrt(n_got / n_ref) if n_ref > 0 else math.inf
    return Comparison(worst, cosine, ratio)


def worst_tensor(
    names: list[str], grads: list[torch.Tensor], reference: list[torch.Tensor]
) -> tuple[str, float]:
    """The name and relative error of the tensor that agrees least with the reference."""
    errors = [
        (name, compare([g], [r]).max_rel_err)
        for name, g, r in zip(names, grads, reference, strict=True)
    ]
    return max(errors, key=lambda item: item[1])
