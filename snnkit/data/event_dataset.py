"""Container of one split of a recorded (event) dataset, backed by the on-disk cache.

:class:`EventDataset` keeps labels in memory and reads events from a memory-mapped
:class:`snnkit.data.cache.CachedRecordings`; :class:`BatchRaster` and :class:`BatchEvents`
stand in for a whole-split raster / :class:`Events` and build only the batch asked for.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from snnkit.data import cache, preprocessing
from snnkit.errors import SnnkitError
from snnkit.events import Events

__all__ = ["Augment", "BatchEvents", "BatchRaster", "EventDataset"]


@dataclass(frozen=True)
class Augment:
    """Training-time augmentations of the EventProp SHD recipe (see :mod:`preprocessing`)."""

    shift: int = 0
    blend: float = 0.0
    seed: int = 0

    @property
    def active(self) -> bool:
        return self.shift > 0 or self.blend > 0


class EventDataset:
    """One split of a neuromorphic dataset: labels in memory, events in the disk cache.

    Quacks like :class:`snnkit.data.SpikeDataset` for training (``len``, ``labels``,
    ``classes``, ``num_inputs``, ``raster(dt)``) but never builds the whole split's raster:
    :meth:`raster` returns a :class:`BatchRaster` that bins the selected recordings on
    demand; :attr:`events` gives them as snnkit :class:`Events` (continuous times, ms).
    """

    def __init__(
        self,
        *,
        name: str,
        split: str,
        classes: tuple[str, ...],
        sensor_size: tuple[int, int, int],
        store: cache.CachedRecordings,
        index: np.ndarray,
        duration: float,
        delay_line: int = 1,
        delay_ms: float = 0.0,
        steps: int | None = None,
        augment: Augment | None = None,
    ) -> None:
        self.name, self.split, self.classes = name, split, tuple(classes)
        self.sensor_size = sensor_size  # (W, H, P) after downsampling
        self.store, self.index = store, np.asarray(index, dtype=np.int64)
        self.duration, self.delay_line, self.delay_ms = duration, delay_line, delay_ms
        self.steps = steps
        self.augment = augment if augment is not None and augment.active else None
        self.labels = torch.from_numpy(store.labels[self.index].astype(np.int64))
        self.groups = store.groups[self.index]
        self._by_class = [np.flatnonzero(self.labels.numpy() == c) for c in range(len(classes))]

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return (
            f"EventDataset({self.name!r}, split={self.split!r}, samples={len(self)}, "
            f"inputs={self.num_inputs}, classes={self.num_classes}, cache={self.store.path})"
        )

    @property
    def num_channels(self) -> int:
        """Sensor channels ``W*H*P`` (before the delay line)."""
        w, h, p = self.sensor_size
        return w * h * p

    @property
    def num_inputs(self) -> int:
        """Input neurons ``N`` (sensor channels times delay-line copies)."""
        return self.num_channels * self.delay_line

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Features of one step: ``(P, H, W)`` for a camera, ``(N,)`` for audio (or with a
        delay line); the raster's flat channel order is this shape's."""
        w, h, p = self.sensor_size
        if (h == 1 and p == 1) or self.delay_line > 1:
            return (self.num_inputs,)
        return (p, h, w)

    def recording(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Times (ms) and flat channels of recording ``i`` of this split, as cached."""
        return self.store.recording(int(self.index[i]))

    # -- batches ---------------------------------------------------------------------------
    def _gather(self, rows: np.ndarray, augment: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Concatenated (times, channels, sample) of recordings ``rows``, augmented, before
        the delay line (sensor channels)."""
        aug = self.augment if augment else None
        rng = None
        if aug is not None:
            digest = zlib.crc32(np.ascontiguousarray(rows).tobytes())
            rng = np.random.default_rng([aug.seed, digest])
        parts = []
        for b, i in enumerate(rows):
            t, ch = self.recording(int(i))
            if aug is not None and aug.blend > 0 and rng.random() < aug.blend:
                peers = self._by_class[int(self.labels[i])]
                j = int(peers[rng.integers(len(peers))])
                t, ch = preprocessing.blend(
                    (t, ch), self.recording(j), self.num_channels, self.duration, rng
                )
            parts.append((np.asarray(t, np.float64), np.asarray(ch, np.int64), b))
        times = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
        channels = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
        sample = (
            np.concatenate([np.full(len(p[0]), p[2], np.int64) for p in parts])
            if parts
            else np.zeros(0, np.int64)
        )
        if aug is not None and aug.shift > 0:
            keep, moved = preprocessing.shift(
                channels, sample, len(rows), self.num_channels, aug.shift, rng
            )
            times, channels, sample = times[keep], moved[keep], sample[keep]
        return times, channels, sample

    def _rows(self, index: Any) -> np.ndarray:
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        rows = np.arange(len(self))[index]
        return np.atleast_1d(rows)

    def bins(self, dt: float, steps: int | None = None) -> tuple[float, int]:
        """(bin width, number of bins): ``steps`` (else the dataset's ``steps`` option) bins
        of width ``duration/steps``, or else bins of width ``dt`` covering ``duration``."""
        steps = steps or self.steps
        if steps is not None:
            return self.duration / steps, steps
        return dt, preprocessing.num_steps(self.duration, dt)

    def batch(
        self,
        index: Any,
        dt: float,
        steps: int | None = None,
        *,
        augment: bool = True,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Spike counts ``[T, B, N]`` of the recordings ``index`` (training augmentations
        apply when this split has them and ``augment`` is true)."""
        rows = self._rows(index)
        width, T = self.bins(dt, steps)
        times, channels, sample = preprocessing.delay_line(
            *self._gather(rows, augment),
            self.num_channels,
            self.delay_line,
            self.delay_ms,
            self.duration,
        )
        return preprocessing.bin_batch(
            times, channels, sample, len(rows), self.num_inputs, width, T, dtype, device
        )

    def raster(self, dt: float, steps: int | None = None) -> BatchRaster:
        """A lazy ``[T, S, N]`` raster of the whole split, binned per batch when indexed."""
        return BatchRaster(self, dt, steps)

    @property
    def events(self) -> BatchEvents:
        """The split as lazy :class:`Events`: ``ds.events[index]`` gives ``[B, N, K]``
        spike times (ms) of those recordings, delay line applied, augmented as
        :meth:`batch` is (the training split, when it has augmentations)."""
        return BatchEvents(self)

    def events_of(
        self, index: Any, dtype: torch.dtype | None = None, *, augment: bool = True
    ) -> Events:
        """Recordings ``index`` as :class:`Events` (training augmentations apply when this
        split has them and ``augment`` is true, the same draws as :meth:`batch`'s)."""
        rows = self._rows(index)
        times, channels, sample = self._gather(rows, augment)
        return _to_events(
            times, channels, sample, len(rows), self.num_channels, self.duration, dtype,
            copies=self.delay_line, delay=self.delay_ms,
        )  # fmt: skip


def _to_events(
    times, channels, sample, batch, num_channels, duration, dtype, *, copies=1, delay=0.0
) -> Events:
    """Ragged events -> padded ``Events`` ``[batch, copies * num_channels, K]`` (+inf padded),
    with the delay line of :func:`preprocessing.delay_line` (copy ``k`` of channel ``c`` is
    input ``k * num_channels + c``, ``k * delay`` later; late events fall out).

    Only the sensor events are sorted, by (sample, channel, time): a delayed copy keeps its
    original's slot in the row (what falls out is a row's tail), so the ``copies``-fold
    delay-line events are written straight into the block, never sorted or concatenated."""
    dtype = dtype or torch.get_default_dtype()
    num_inputs = copies * num_channels
    order = np.lexsort((times, channels, sample))
    times, channels, sample = times[order], channels[order], sample[order]
    sensor_row = sample * num_channels + channels
    counts = np.bincount(sensor_row, minlength=batch * num_channels)
    K = int(counts.max()) if len(counts) else 0
    pos = torch.from_numpy(np.arange(len(sensor_row)) - (np.cumsum(counts) - counts)[sensor_row])
    row = torch.from_numpy(sample * num_inputs + channels)
    # filled in the target dtype: no float64 copy of the (mostly padding) [B, N, K] block
    out = torch.full((batch * num_inputs, K), float("inf"), dtype=dtype)
    # a time just below the duration can round up to it in float32: kept as the last value
    # before it (the raster puts it in its last bin likewise)
    last = torch.nextafter(torch.tensor(duration, dtype=dtype), torch.tensor(0.0, dtype=dtype))
    base = torch.from_numpy(np.asarray(times, np.float64))
    for k in range(copies):
        t = base + k * delay
        inside = t < duration
        values = torch.minimum(t[inside].to(dtype), last)
        out[row[inside] + k * num_channels, pos[inside]] = values
    return Events(out.view(batch, num_inputs, K), duration)


class BatchEvents:
    """The spike times of a split, padded per batch: ``events[index]`` is an :class:`Events`
    of those recordings (on ``device``, in ``dtype``); ``.to`` retargets, ``.duration`` is
    the window. It stands in for a whole-split ``Events`` in :class:`snnkit.train.Trainer`.
    """

    def __init__(
        self,
        dataset: EventDataset,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
    ) -> None:
        self.dataset, self.device, self.dtype = dataset, torch.device(device), dtype
        self.duration = dataset.duration

    def __repr__(self) -> str:
        return f"BatchEvents(samples={len(self)}, neurons={self.num_neurons}, duration={self.duration})"

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def batch_size(self) -> int:
        return len(self.dataset)

    @property
    def num_neurons(self) -> int:
        return self.dataset.num_inputs

    def to(self, *args: Any, **kwargs: Any) -> BatchEvents:
        device, dtype = _parse_to(
            self.device, self.dtype or torch.get_default_dtype(), args, kwargs
        )
        return BatchEvents(self.dataset, device, dtype)

    def __getitem__(self, index: Any) -> Events:
        return self.dataset.events_of(index, self.dtype).to(self.device)


def _parse_to(device, dtype, args, kwargs) -> tuple[torch.device, torch.dtype]:
    """``.to(device, dtype)`` arguments (positional or keyword), dtype floating."""
    device, dtype = kwargs.pop("device", device), kwargs.pop("dtype", dtype)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise SnnkitError(f".to accepts a device and a dtype here, got {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, torch.dtype):
            dtype = arg
        else:
            device = arg
    if not dtype.is_floating_point:
        raise SnnkitError(f"spike data is held as floats; got dtype {dtype}")
    return torch.device(device), dtype


class BatchRaster:
    """The ``[T, S, N]`` raster of a split, built per batch: ``raster[:, index]`` bins only
    the recordings in ``index`` (on ``device``, in ``dtype``). ``.to(device, dtype)`` returns
    a retargeted view, so it stands in for a dense tensor in :class:`snnkit.train.Trainer`.
    """

    def __init__(
        self,
        dataset: EventDataset,
        dt: float,
        steps: int | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.dataset, self.dt, self.steps = dataset, dt, steps
        self.device, self.dtype = torch.device(device), dtype
        _, T = dataset.bins(dt, steps)
        self.shape = torch.Size((T, len(dataset), dataset.num_inputs))

    def __repr__(self) -> str:
        return f"BatchRaster(shape={tuple(self.shape)}, dtype={self.dtype}, device={self.device})"

    def __len__(self) -> int:
        return self.shape[0]

    def to(self, *args: Any, **kwargs: Any) -> BatchRaster:
        device, dtype = _parse_to(self.device, self.dtype, args, kwargs)
        return BatchRaster(self.dataset, self.dt, self.steps, device, dtype)

    def __getitem__(self, key: Any) -> torch.Tensor:
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None)):
            raise SnnkitError(
                "a BatchRaster is indexed as raster[:, samples] (all steps, some samples); "
                "use .dense() for the whole raster"
            )
        return self.dataset.batch(key[1], self.dt, self.steps, dtype=self.dtype, device=self.device)

    def dense(self) -> torch.Tensor:
        """The whole ``[T, S, N]`` raster in memory (without training augmentations)."""
        return self.dataset.batch(
            slice(None), self.dt, self.steps, augment=False, dtype=self.dtype, device=self.device
        )
