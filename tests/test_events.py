"""Tests for snnkit.events: Events validation, raster conversions and layout adapters."""

from __future__ import annotations

import math

import pytest
import torch

from snnkit.errors import SnnkitError
from snnkit.events import (
    Events,
    batch_first_to_time_first,
    check_raster,
    time_first_to_batch_first,
    time_first_to_time_last,
    time_last_to_time_first,
)

INF = math.inf


def grid_events(dtype: torch.dtype, dt: float) -> Events:
    """Events whose times are k*dt (computed in float64, rounded to dtype)."""
    k = torch.tensor(
        [
            [[0, 3, 3, 7], [1, INF, INF, INF], [INF, INF, INF, INF]],
            [[9, 9, 9, INF], [2, 5, INF, INF], [0, 1, 2, 8]],
        ],
        dtype=torch.float64,
    )
    return Events((k * dt).to(dtype), 10 * dt)


def test_to_raster_counts_and_shape():
    ev = Events.from_lists([[[0.5, 1.0, 1.2], []], [[2.9], [0.0, 0.1]]], duration=3.0)
    r = ev.to_raster(dt=1.0)
    assert r.shape == (3, 2, 2)
    expected = torch.zeros(3, 2, 2)
    expected[0, 0, 0] = 1  # 0.5
    expected[1, 0, 0] = 2  # 1.0 and 1.2 in the same bin
    expected[2, 1, 0] = 1  # 2.9
    expected[0, 1, 1] = 2  # 0.0 and 0.1
    assert torch.equal(r, expected)
    assert r.sum() == ev.counts().sum() == 6
    assert ev.counts().tolist() == [[3, 0], [1, 2]]
    assert ev.batch_size == 2 and ev.num_neurons == 2 and ev.max_spikes == 3


def test_to_raster_bin_rounding_robust():
    # 0.3 / 0.1 = 2.9999999999999996 in float64: must still land in bin 3
    ev = Events(torch.tensor([[[0.3, 0.7]]], dtype=torch.float64), duration=1.0)
    r = ev.to_raster(0.1)
    assert r.shape[0] == 10
    assert r[3, 0, 0] == 1 and r[7, 0, 0] == 1 and r.sum() == 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dt", [1.0, 0.1, 0.25])
def test_events_raster_events_roundtrip(dtype, dt):
    ev = grid_events(dtype, dt)
    r = ev.to_raster(dt)
    assert r.shape == (10, 2, 3)
    assert r[9, 1, 0] == 3  # three spikes in one bin
    back = Events.from_raster(r, dt)
    assert back.times.dtype == dtype
    assert torch.equal(back.times, ev.times)
    assert back.duration == pytest.approx(ev.duration)


def test_raster_events_raster_roundtrip():
    g = torch.Generator().manual_seed(0)
    raster = torch.randint(0, 4, (13, 5, 7), generator=g).float()
    raster[:, 0, 0] = 0  # a silent neuron
    ev = Events.from_raster(raster, dt=0.5)
    assert ev.duration == pytest.approx(6.5)
    assert ev.max_spikes == int(raster.sum(0).max())
    assert torch.equal(ev.counts(), raster.sum(0).long())
    assert torch.isinf(ev.times[0, 0]).all()
    assert torch.equal(ev.to_raster(0.5), raster)


def test_from_raster_integer_and_bad_values():
    raster = torch.tensor([[[2]], [[0]], [[1]]])
    ev = Events.from_raster(raster, dt=2.0)
    assert ev.times.tolist() == [[[0.0, 0.0, 4.0]]]
    with pytest.raises(SnnkitError, match="non-integer"):
        Events.from_raster(torch.full((2, 1, 1), 0.5), dt=1.0)
    with pytest.raises(SnnkitError, match="negative"):
        Events.from_raster(torch.full((2, 1, 1), -1.0), dt=1.0)
    with pytest.raises(SnnkitError, match=r"\[T, B, N\]"):
        Events.from_raster(torch.zeros(2, 3), dt=1.0)


def test_out_of_range_spike_with_explicit_steps_raises():
    ev = Events(torch.tensor([[[0.5, 4.5]]]), duration=5.0)
    assert ev.to_raster(1.0, steps=5).sum() == 2
    assert ev.to_raster(1.0, steps=8).shape == (8, 1, 1)
    with pytest.raises(SnnkitError, match="steps >= 5"):
        ev.to_raster(1.0, steps=4)
    with pytest.raises(SnnkitError, match="dt"):
        ev.to_raster(0.0)
    with pytest.raises(SnnkitError, match="steps"):
        ev.to_raster(1.0, steps=0)


@pytest.mark.parametrize(
    ("times", "duration", "needle"),
    [
        (torch.tensor([[[0.1, math.nan]]]), 1.0, "NaN"),
        (torch.tensor([[[0.5, 0.1]]]), 1.0, "sorted"),
        (torch.tensor([[[INF, 0.1]]]), 1.0, "sorted"),
        (torch.tensor([[[-0.1, 0.2]]]), 1.0, "negative"),
        (torch.tensor([[[-INF, 0.2]]]), 1.0, "-inf"),
        (torch.tensor([[[0.2, 1.0]]]), 1.0, "duration"),
        (torch.tensor([[0.1, 0.2]]), 1.0, "3-D"),
        (torch.tensor([[[1, 2]]]), 5.0, "floating"),
        (torch.tensor([[[0.1]]]), 0.0, "duration"),
    ],
)
def test_events_validation(times, duration, needle):
    with pytest.raises(SnnkitError, match=needle):
        Events(times, duration)


def test_from_lists_sorts_and_pads():
    ev = Events.from_lists([[[0.3, 0.1], [0.2]]], duration=1.0, dtype=torch.float64)
    assert ev.times.tolist() == [[[0.1, 0.3], [0.2, INF]]]
    with pytest.raises(SnnkitError, match="neuron counts"):
        Events.from_lists([[[0.1]], [[0.1], [0.2]]], duration=1.0)


def test_getitem_and_to():
    ev = grid_events(torch.float32, 1.0)
    one = ev[1]
    assert isinstance(one, Events) and one.batch_size == 1
    assert torch.equal(one.times[0], ev.times[1])
    assert torch.equal(ev[torch.tensor([1, 0])].times, ev.times.flip(0))
    assert ev[0:1].batch_size == 1
    assert ev.to(torch.float64).times.dtype == torch.float64
    assert ev.to("cpu", torch.float32) is ev  # nothing to move: not checked again
    with pytest.raises(SnnkitError, match="floating"):
        ev.to(torch.int64)


def test_layout_adapters_roundtrip():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)  # [B, T, N]
    tf = batch_first_to_time_first(x)
    assert tf.shape == (3, 2, 4) and tf[1, 0, 2] == x[0, 1, 2]
    assert torch.equal(time_first_to_batch_first(tf), x)
    y = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)  # [B, N, T]
    tf2 = time_last_to_time_first(y)
    assert tf2.shape == (3, 2, 4) and tf2[2, 1, 0] == y[1, 0, 2]
    assert torch.equal(time_first_to_time_last(tf2), y)
    with pytest.raises(SnnkitError, match=r"\[B, T, N\]"):
        batch_first_to_time_first(torch.zeros(2, 3))
    with pytest.raises(SnnkitError, match=r"\[B, N, T\]"):
        time_last_to_time_first(torch.zeros(2, 3, 4, 5))


def test_check_raster():
    x = torch.zeros(5, 2, 3)
    assert check_raster(x, features=3) is x
    with pytest.raises(SnnkitError, match="torch.Tensor"):
        check_raster([[[0.0]]])
    with pytest.raises(SnnkitError, match=r"\[T, B, N\].*time_first"):
        check_raster(torch.zeros(5, 3))
    with pytest.raises(SnnkitError, match="floating"):
        check_raster(torch.zeros(5, 2, 3, dtype=torch.long))
    bad = x.clone()
    bad[0, 0, 0] = math.nan
    with pytest.raises(SnnkitError, match="NaN"):
        check_raster(bad)
    bad[0, 0, 0] = INF
    with pytest.raises(SnnkitError, match="inf"):
        check_raster(bad)
    with pytest.raises(SnnkitError, match="spikes_in.*4 are expected"):
        check_raster(x, name="spikes_in", features=4)


@pytest.mark.parametrize("dt", [0.1, 1 / 3])
def test_float32_grid_times_long_recording(dt):
    # k*dt rounded to float32 is often just below k*dt: every spike must still land in bin k
    k = torch.arange(2000, dtype=torch.float64)
    ev = Events((k * dt).to(torch.float32).view(1, 1, -1), duration=2000 * dt)
    r = ev.to_raster(dt)
    assert r.shape == (2000, 1, 1) and r.eq(1).all()
    assert torch.equal(Events.from_raster(r, dt).times, ev.times)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_spikes_in_time_order_are_the_sorted_finite_spikes(dtype):
    """Per sample, the finite spikes sorted by time (ties by slot), as a full stable sort
    of the flat block gives them, without its trailing padding."""
    from snnkit.events import spikes_in_time_order

    gen = torch.Generator().manual_seed(0)
    times = (torch.randint(0, 40, (5, 30, 6), generator=gen) * 0.5).to(dtype)  # ties
    times[torch.rand(times.shape, generator=gen) < 0.6] = math.inf
    times[4] = math.inf  # a sample without spikes
    got, neurons, slots = spikes_in_time_order(times)
    want, order = torch.sort(times.reshape(5, -1), dim=1, stable=True)
    E = got.shape[1]
    assert E == int(torch.isfinite(times).flatten(1).sum(1).max()) < 30 * 6
    assert torch.equal(got, want[:, :E])
    finite = torch.isfinite(got)
    assert torch.equal(slots[finite], order[:, :E][finite])
    assert torch.equal(neurons[finite], (order[:, :E] // 6)[finite])
    assert not bool(slots[~finite].any()) and not bool(neurons[~finite].any())
    small, idx, none = spikes_in_time_order(times, keep_order=False, index_dtype=torch.int32)
    assert none is None and idx.dtype == torch.int32 and torch.equal(small, got)
