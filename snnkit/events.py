"""Spike data in two representations: dense time-first rasters and continuous spike times.

A *raster* is a plain floating tensor ``[T, B, N]`` (time first: steps, samples, neurons)
holding the number of spikes of neuron ``n`` of sample ``b`` in bin ``t``, which covers
``[t*dt, (t+1)*dt)``. :class:`Events` holds spike times ``[B, N, K]`` padded with ``+inf``.

Binning is robust to rounding: a spike at ``t`` goes to bin ``floor(t/dt + tol)`` where
``tol`` is ``1e-9`` for float64 times and a few units of roundoff (relative to ``t/dt``) for
lower precisions, so a time computed as ``k*dt`` always lands in bin ``k``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from snnkit.errors import SnnkitError

__all__ = [
    "Events",
    "batch_first_to_time_first",
    "check_raster",
    "spikes_in_time_order",
    "time_first_to_batch_first",
    "time_first_to_time_last",
    "time_last_to_time_first",
]

_ADAPTERS = (
    "convert with snnkit.events.batch_first_to_time_first ([B, T, N]) "
    "or time_last_to_time_first ([B, N, T])"
)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_positive(name: str, value: object) -> float:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise SnnkitError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_steps(steps: object) -> int:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise SnnkitError(f"steps must be a positive integer (number of time bins), got {steps!r}")
    return steps


def _num_steps(duration: float, dt: float) -> int:
    return max(1, math.ceil(duration / dt - 1e-9))


def _bin_index(times: torch.Tensor, dt: float) -> torch.Tensor:
    """Bin of each (finite) spike time, tolerant to ``k*dt`` rounding (see module doc)."""
    q = times.to(torch.float64) / dt
    if times.dtype == torch.float64:
        q = q + 1e-9
    else:
        eps = torch.finfo(times.dtype).eps
        q = q + (4 * eps * q.abs()).clamp(min=1e-9, max=1e-2)
    return torch.floor(q).to(torch.long)


@dataclass(frozen=True, eq=False)
class Events:
    """Continuous spike times of a batch: ``times[b, n, :]`` lists neuron ``n``'s spikes.

    ``times`` is ``[B, N, K]`` floating, sorted ascending along ``K`` and padded with
    ``+inf`` (no spike); finite times lie in ``[0, duration)``.
    """

    times: torch.Tensor
    duration: float

    def __post_init__(self) -> None:
        t = self.times
        if not isinstance(t, torch.Tensor):
            raise SnnkitError(
                f"Events.times must be a torch.Tensor [B, N, K], got {type(t).__name__}; "
                "use Events.from_lists for Python lists"
            )
        if t.ndim != 3:
            raise SnnkitError(
                f"Events.times must be 3-D [B, N, K] (samples, neurons, spikes), got shape "
                f"{tuple(t.shape)}; add the missing axes with unsqueeze"
            )
        if not t.is_floating_point():
            raise SnnkitError(
                f"Events.times must have a floating dtype (spike times, +inf = no spike), got "
                f"{t.dtype}; convert with .float()"
            )
        duration = _check_positive("Events.duration", self.duration)
        object.__setattr__(self, "duration", duration)
        if t.numel() == 0:
            return
        # checked in few passes over the (mostly padding) block: a batch of SHD delay-line
        # inputs is ~45 M slots, and the smallest value alone tells NaN, -inf and negatives
        t = t.detach()
        lo = float(t.amin())  # NaN propagates
        if math.isnan(lo):
            raise SnnkitError(
                "Events.times contains NaN; spike times must be numbers, use +inf to pad "
                "neurons with fewer spikes"
            )
        if lo == -math.inf:
            raise SnnkitError(
                "Events.times contains -inf; only +inf is allowed, as padding after the last spike"
            )
        if lo < 0:
            raise SnnkitError(
                f"Events.times contains a negative spike time ({lo}); times must lie in "
                f"[0, duration={duration}), shift them so the recording starts at 0"
            )
        late = (t >= duration) & (t < math.inf)
        if bool(late.any()):
            hi = float(t[late].max())
            raise SnnkitError(
                f"Events.times contains a spike at {hi}, not before duration={duration}; "
                "times must lie in [0, duration), pass a larger duration"
            )
        if t.shape[2] > 1 and not bool((t[..., 1:] >= t[..., :-1]).all()):
            raise SnnkitError(
                "Events.times is not sorted ascending along the spike axis (or +inf padding "
                "comes before a spike); sort each row, e.g. times.sort(dim=-1).values"
            )

    @property
    def batch_size(self) -> int:
        """Number of samples ``B``."""
        return self.times.shape[0]

    @property
    def num_neurons(self) -> int:
        """Number of neurons ``N``."""
        return self.times.shape[1]

    @property
    def max_spikes(self) -> int:
        """Spike slots per neuron ``K`` (padded)."""
        return self.times.shape[2]

    def counts(self) -> torch.Tensor:
        """Number of spikes per sample and neuron, ``[B, N]`` long."""
        return torch.isfinite(self.times).sum(dim=2)

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> Events:
        """Select samples (indexing over ``B``); an int keeps the batch axis (``B = 1``)."""
        if isinstance(index, int) and not isinstance(index, bool):
            selected = self.times[index].unsqueeze(0)
        else:
            if isinstance(index, tuple):
                raise SnnkitError(
                    "Events indexing selects samples only (one index over B); index "
                    "events.times directly for other axes"
                )
            selected = self.times[index]
        return Events(selected, self.duration)

    def to(self, *args, **kwargs) -> Events:
        """Move/cast the times like :meth:`torch.Tensor.to` (dtype must stay floating);
        ``self`` when nothing changes."""
        times = self.times.to(*args, **kwargs)
        return self if times is self.times else Events(times, self.duration)

    def to_raster(
        self, dt: float, steps: int | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Bin the spikes into a ``[T, B, N]`` count raster (``dtype`` defaults to the times').

        ``T = steps`` or ``ceil(duration/dt)``. A spike falling at or after bin ``T`` raises
        :class:`SnnkitError` rather than being dropped.
        """
        dt = _check_positive("dt", dt)
        T = _num_steps(self.duration, dt) if steps is None else _check_steps(steps)
        B, N, _ = self.times.shape
        dtype = dtype or self.times.dtype
        out = torch.zeros(T * B * N, dtype=dtype, device=self.times.device)
        finite = torch.isfinite(self.times)
        b, n, _ = finite.nonzero(as_tuple=True)
        if b.numel() == 0:
            return out.view(T, B, N)
        bins = _bin_index(self.times[finite], dt)
        last = int(bins.max())
        if last >= T:
            raise SnnkitError(
                f"a spike falls into bin {last} but the raster has only {T} steps of dt={dt}; "
                f"spikes are never dropped silently, pass steps >= {last + 1}"
            )
        flat = (bins * B + b) * N + n
        out.scatter_add_(0, flat, torch.ones_like(flat, dtype=dtype))
        return out.view(T, B, N)

    @classmethod
    def from_raster(
        cls, raster: torch.Tensor, dt: float, dtype: torch.dtype | None = None
    ) -> Events:
        """Inverse of :meth:`to_raster`: a count ``c`` in bin ``t`` gives ``c`` spikes at ``t*dt``.

        ``K`` is the largest spike count of any neuron; ``duration = T*dt``. ``dtype`` defaults
        to the raster's (or torch's default dtype for integer rasters).
        """
        dt = _check_positive("dt", dt)
        if not isinstance(raster, torch.Tensor) or raster.ndim != 3:
            shape = tuple(raster.shape) if isinstance(raster, torch.Tensor) else type(raster)
            raise SnnkitError(
                f"Events.from_raster expects a [T, B, N] time-first tensor, got {shape}; "
                + _ADAPTERS
            )
        if raster.is_complex():
            raise SnnkitError("Events.from_raster expects real spike counts, got a complex tensor")
        if raster.is_floating_point():
            if not bool(torch.isfinite(raster).all()):
                raise SnnkitError(
                    "raster contains NaN or inf; it must hold non-negative integer spike counts"
                )
            if not bool((raster == raster.round()).all()):
                raise SnnkitError(
                    "raster contains non-integer values; Events need whole spike counts, "
                    "round or threshold the raster first"
                )
            out_dtype = dtype or raster.dtype
        else:
            out_dtype = dtype or torch.get_default_dtype()
        if raster.dtype != torch.bool and raster.numel() and bool((raster < 0).any()):
            raise SnnkitError(
                "raster contains negative values; it must hold non-negative spike counts"
            )
        T, B, N = raster.shape
        counts = raster.to(torch.long).permute(1, 2, 0)  # [B, N, T]
        per_row = counts.sum(dim=2).reshape(-1)
        K = int(per_row.max()) if per_row.numel() else 0
        times = torch.full((B * N, K), math.inf, dtype=out_dtype, device=raster.device)
        if K > 0:
            b, n, t = counts.nonzero(as_tuple=True)  # row-major: ascending t within (b, n)
            reps = counts[b, n, t]
            row = (b * N + n).repeat_interleave(reps)
            tt = t.repeat_interleave(reps)
            starts = per_row.cumsum(0) - per_row
            pos = torch.arange(row.numel(), device=raster.device) - starts[row]
            times[row, pos] = (tt.to(torch.float64) * dt).to(out_dtype)
        return cls(times.view(B, N, K), T * dt)

    @classmethod
    def from_lists(
        cls,
        spikes: Sequence[Sequence[Sequence[float]]],
        duration: float,
        dtype: torch.dtype | None = None,
    ) -> Events:
        """Build from ``spikes[b][n]`` = times of neuron ``n`` in sample ``b`` (sorted here)."""
        if len(spikes) == 0:
            raise SnnkitError("Events.from_lists needs at least one sample; got an empty list")
        N = len(spikes[0])
        if any(len(sample) != N for sample in spikes):
            sizes = sorted({len(sample) for sample in spikes})
            raise SnnkitError(
                f"Events.from_lists: samples have different neuron counts {sizes}; every "
                "sample must list all N neurons (use [] for a silent neuron)"
            )
        rows = [[sorted(float(t) for t in neuron) for neuron in sample] for sample in spikes]
        K = max((len(neuron) for sample in rows for neuron in sample), default=0)
        padded = [[neuron + [math.inf] * (K - len(neuron)) for neuron in s] for s in rows]
        times = torch.tensor(padded, dtype=torch.float64).reshape(len(rows), N, K)
        return cls(times.to(dtype or torch.get_default_dtype()), duration)


def spikes_in_time_order(
    times: torch.Tensor, keep_order: bool = True, index_dtype: torch.dtype = torch.int64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The finite spikes of ``times [B, N, K]`` in time order per sample (ties by slot),
    as an event-driven layer consumes them: ``(times [B, E], neurons [B, E], slots [B, E]
    or None)``, ``E`` the most finite spikes of a sample (not ``N * K``), padded with
    ``inf`` times, neuron 0 and slot 0 (scatter into the flat ``[B, N * K]`` block with
    add). ``slots`` only if ``keep_order``; neurons in ``index_dtype``.

    Gathered and sorted sample by sample, finite spikes only, so a mostly padding block
    (SHD's delay-line inputs are ~90 % ``inf``) never makes ``[B, N * K]`` temporaries."""
    B, _, K = times.shape
    rows = times.detach().reshape(B, -1)
    E = max((int((row < math.inf).sum()) for row in rows), default=0)  # row by row: no
    # [B, N * K] temporaries (count_nonzero over dim 1 is ~10x slower here)
    out = rows.new_full((B, E), math.inf)
    neurons = torch.zeros(B, E, dtype=index_dtype, device=times.device)
    order = torch.zeros(B, E, dtype=torch.int64, device=times.device) if keep_order else None
    for b, row in enumerate(rows):
        slot = (row < math.inf).nonzero().squeeze(1)
        t, by_time = torch.sort(row[slot], stable=True)
        slot, n = slot[by_time], len(t)
        out[b, :n] = t
        neurons[b, :n] = torch.div(slot, max(K, 1), rounding_mode="floor")
        if order is not None:
            order[b, :n] = slot
    return out, neurons, order


def _check_3d(x: object, name: str, layout: str, hint: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise SnnkitError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.ndim != 3:
        raise SnnkitError(f"{name} must be 3-D {layout}, got shape {tuple(x.shape)}; {hint}")
    return x


def batch_first_to_time_first(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, N]`` -> ``[T, B, N]`` (a view)."""
    _check_3d(x, "input", "[B, T, N] (batch-first)", "reshape it to samples x steps x neurons")
    return x.transpose(0, 1)


def time_first_to_batch_first(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, N]`` -> ``[B, T, N]`` (a view)."""
    _check_3d(x, "input", "[T, B, N] (time-first)", "reshape it to steps x samples x neurons")
    return x.transpose(0, 1)


def time_last_to_time_first(x: torch.Tensor) -> torch.Tensor:
    """``[B, N, T]`` -> ``[T, B, N]`` (a view)."""
    _check_3d(x, "input", "[B, N, T] (time-last)", "reshape it to samples x neurons x steps")
    return x.permute(2, 0, 1)


def time_first_to_time_last(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, N]`` -> ``[B, N, T]`` (a view)."""
    _check_3d(x, "input", "[T, B, N] (time-first)", "reshape it to steps x samples x neurons")
    return x.permute(1, 2, 0)


def check_raster(x: torch.Tensor, name: str = "input", features: int | None = None) -> torch.Tensor:
    """Validate a ``[T, B, N]`` time-first finite float raster (``N == features``); return it."""
    _check_3d(x, name, "[T, B, N] (time-first: steps, samples, neurons)", _ADAPTERS)
    if not x.is_floating_point():
        raise SnnkitError(
            f"{name} must have a floating dtype (spike counts as float), got {x.dtype}; "
            "convert with .float()"
        )
    if not bool(torch.isfinite(x).all()):
        raise SnnkitError(
            f"{name} contains NaN or inf values; a raster holds finite spike counts, check "
            "the data pipeline that produced it"
        )
    if features is not None and x.shape[2] != features:
        raise SnnkitError(
            f"{name} has {x.shape[2]} features (last axis of [T, B, N]) but {features} are "
            f"expected; check the layout or the model's input size"
        )
    return x
