"""Built-in spike datasets (generated locally, no download) and the dataset containers."""

from __future__ import annotations

from snnkit.data.base import DatasetSpec, SpikeDataset
from snnkit.data.randman import RandmanManifolds, randman_points, randman_spec
from snnkit.data.yinyang import yinyang_class, yinyang_points, yinyang_spec

__all__ = [
    "DatasetSpec",
    "RandmanManifolds",
    "SpikeDataset",
    "randman_points",
    "randman_spec",
    "yinyang_class",
    "yinyang_points",
    "yinyang_spec",
]
