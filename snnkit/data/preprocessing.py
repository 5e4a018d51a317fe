"""Event-level preprocessing of neuromorphic recordings (pure numpy / torch, vectorised).

Two stages. *Per recording*, before caching (:func:`denoise`, :func:`downsample`,
:func:`flatten`, :func:`crop`), and *per batch*, on a batch of flattened recordings
(:func:`shift`, :func:`blend`, :func:`delay_line`, :func:`bin_batch`). A batch is held as
concatenated arrays ``times`` (ms), ``channels`` (flat input index) and ``sample`` (which
recording of the batch each event belongs to).

Flat channel order is that of a ``[P, H, W]`` frame: ``channel = (p*H + y)*W + x``; an audio
recording (SHD, SSC) has ``H = P = 1`` so its channel is its unit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from snnkit.errors import SnnkitError
from snnkit.events import _bin_index

__all__ = [
    "bin_batch",
    "blend",
    "crop",
    "delay_line",
    "denoise",
    "downsample",
    "flatten",
    "num_steps",
    "shift",
]

_NEIGHBOURS = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dx, dy) != (0, 0)]


def denoise(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, filter_time: float, width: int, height: int
) -> np.ndarray:
    """Mask of the events to keep: those with a *neighbour* event shortly before.

    Event ``i`` at pixel ``(x, y)`` is kept iff some event ``j`` (any polarity) at one of
    the 8 neighbouring pixels has ``t_i - filter_time < t_j <= t_i``. Events at the same pixel
    never support each other, so isolated (hot-pixel or shot-noise) events go. ``t`` and
    ``filter_time`` share a unit; integer times are compared exactly.
    """
    n = len(t)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    integer = np.issubdtype(np.asarray(t).dtype, np.integer)
    t = np.asarray(t, dtype=np.int64 if integer else np.float64)
    t0 = t.min()
    rel = t - t0
    span = rel.max() + 1  # keys of consecutive pixels never overlap
    pixel = y * width + x
    keys = pixel * span + rel
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    sorted_pixel = pixel[order]
    sorted_rel = rel[order]
    for dx, dy in _NEIGHBOURS:
        nx, ny = x + dx, y + dy
        inside = (nx >= 0) & (nx < width) & (ny >= 0) & (ny < height)
        target = ny * width + nx
        # last event at the neighbouring pixel no later than t_i
        k = np.searchsorted(sorted_keys, target * span + rel, side="right") - 1
        kc = np.clip(k, 0, n - 1)
        hit = (
            inside & (k >= 0) & (sorted_pixel[kc] == target) & (sorted_rel[kc] > rel - filter_time)
        )
        keep |= hit
    return keep


def downsample(coordinate: np.ndarray, size: int, factor: int) -> tuple[np.ndarray, int]:
    """Pool ``factor`` neighbouring pixels (or audio channels) into one: ``c // factor``.

    Returns the new coordinates and the new size ``ceil(size/factor)``.
    """
    return np.asarray(coordinate) // factor, -(-size // factor)


def flatten(x: np.ndarray, y: np.ndarray, p: np.ndarray, width: int, height: int) -> np.ndarray:
    """Flat channel index ``(p*H + y)*W + x`` (the ``[P, H, W]`` frame order)."""
    return (np.asarray(p, dtype=np.int64) * height + np.asarray(y, dtype=np.int64)) * width + (
        np.asarray(x, dtype=np.int64)
    )


def crop(t: np.ndarray, duration: float) -> np.ndarray:
    """Mask of events inside the fixed window ``[0, duration)`` (later ones are cut off)."""
    t = np.asarray(t)
    return (t >= 0) & (t < duration)


# -- per batch -----------------------------------------------------------------------------


def shift(
    channels: np.ndarray,
    sample: np.ndarray,
    batch_size: int,
    num_channels: int,
    max_shift: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask and shifted channels: each recording moves by one integer drawn from
    ``[-max_shift, max_shift]``; events shifted outside ``[0, num_channels)`` are dropped.

    Returns ``(keep, new_channels)``.
    """
    offsets = rng.integers(-max_shift, max_shift + 1, size=batch_size)
    moved = np.asarray(channels, dtype=np.int64) + offsets[sample]
    keep = (moved >= 0) & (moved < num_channels)
    return keep, moved


def blend(
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    num_channels: int,
    duration: float,
    rng: np.random.Generator,
    p_first: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend two recordings ``(times, channels)`` of the same class into a new one.

    Both are moved so that their centres of mass (mean channel, rounded, and mean time)
    coincide at the mean of the two centres; then each event of ``a`` is kept with
    probability ``p_first`` and each of ``b`` with ``1 - p_first``. Events moved outside
    ``[0, num_channels)`` x ``[0, duration)`` are dropped. Returns times sorted ascending.
    """
    (ta, ca), (tb, cb) = a, b
    if len(ta) == 0 or len(tb) == 0:
        return np.asarray(ta, dtype=np.float64), np.asarray(ca, dtype=np.int64)
    ma, mb = float(np.mean(ta)), float(np.mean(tb))
    na, nb = float(np.mean(ca)), float(np.mean(cb))
    m, c = 0.5 * (ma + mb), 0.5 * (na + nb)
    ta2, tb2 = np.asarray(ta, np.float64) + (m - ma), np.asarray(tb, np.float64) + (m - mb)
    ca2 = np.asarray(ca, np.int64) + int(round(c - na))
    cb2 = np.asarray(cb, np.int64) + int(round(c - nb))
    pick_a = rng.random(len(ta2)) < p_first
    pick_b = rng.random(len(tb2)) >= p_first
    t = np.concatenate([ta2[pick_a], tb2[pick_b]])
    ch = np.concatenate([ca2[pick_a], cb2[pick_b]])
    inside = (ch >= 0) & (ch < num_channels) & crop(t, duration)
    t, ch = t[inside], ch[inside]
    order = np.argsort(t, kind="stable")
    return t[order], ch[order]


def delay_line(
    times: np.ndarray,
    channels: np.ndarray,
    sample: np.ndarray,
    num_channels: int,
    copies: int,
    delay: float,
    duration: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Delay-line input: ``copies`` copies of every input, copy ``k`` delayed by ``k*delay``.

    Copy ``k`` of channel ``c`` becomes channel ``k*num_channels + c`` (so the input grows
    ``copies``-fold); delayed events at or after ``duration`` fall out of the window.
    """
    if copies == 1:
        return times, channels, sample
    k = np.repeat(np.arange(copies), len(times))
    t = np.tile(np.asarray(times, np.float64), copies) + k * delay
    ch = np.tile(np.asarray(channels, np.int64), copies) + k * num_channels
    s = np.tile(np.asarray(sample), copies)
    inside = t < duration
    return t[inside], ch[inside], s[inside]


def bin_batch(
    times: np.ndarray,
    channels: np.ndarray,
    sample: np.ndarray,
    batch_size: int,
    num_channels: int,
    dt: float,
    steps: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Spike counts ``[steps, batch_size, num_channels]``: an event at ``t`` goes to bin
    ``floor(t/dt)`` (with :class:`snnkit.events.Events`' rounding tolerance), so the result
    equals ``Events.to_raster`` of the same events. Events past the last bin raise."""
    out = torch.zeros(steps * batch_size * num_channels, dtype=dtype, device=device)
    if len(times) == 0:
        return out.view(steps, batch_size, num_channels)
    t = torch.from_numpy(np.ascontiguousarray(times, dtype=np.float32))
    bins = _bin_index(t, dt)
    # neither the rounding tolerance nor float32 (a float64 time within its spacing below
    # the window's end rounds up to it) may push an event inside the window past its last bin
    inside = torch.from_numpy(np.asarray(times, dtype=np.float64) < steps * dt)
    bins = torch.where(inside, bins.clamp(max=steps - 1), bins)
    last = int(bins.max())
    if last >= steps:
        raise SnnkitError(
            f"an event falls into bin {last} but the raster has {steps} steps of dt={dt}; "
            f"events are never dropped silently, crop the recordings (duration) or add steps"
        )
    b = torch.from_numpy(np.asarray(sample, dtype=np.int64))
    n = torch.from_numpy(np.asarray(channels, dtype=np.int64))
    flat = ((bins * batch_size + b) * num_channels + n).to(device)
    out.scatter_add_(0, flat, torch.ones(flat.shape, dtype=dtype, device=device))
    return out.view(steps, batch_size, num_channels)


def num_steps(duration: float, dt: float) -> int:
    """Bins of width ``dt`` covering ``[0, duration)`` (as :meth:`Events.to_raster`)."""
    return max(1, math.ceil(duration / dt - 1e-9))
