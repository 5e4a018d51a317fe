"""Synthetic SHD at the real dataset's scale, in SHD's on-disk format (for speed, not accuracy).

    python benchmarks/synthetic_shd.py DIR                     # DIR/SHD/shd_{train,test}.h5
    python benchmarks/synthetic_shd.py DIR --train 512 --test 128 --spikes 300  # sparse
    python benchmarks/synthetic_shd.py --stats DIR/SHD/shd_train.h5  # any SHD file's statistics

Writes the HDF5 layout tonic's SHD reader expects (``spikes/times`` in seconds and
``spikes/units`` per recording, ``labels``, ``extra/keys``, ``extra/speaker``,
``extra/meta_info``), so ``snnkit run --dataset shd --data-dir DIR`` trains on it exactly
as on the real files. Scale: 700 channels, 20 classes and the published split sizes
(8156 training and 2264 test recordings; Cramer et al. 2020, IEEE TNNLS 33:2744, and
docs/datasets.md). Per recording the duration is drawn from a normal distribution (mean
``--duration`` s, sd 0.15 s, clipped to [0.4, 1.4] s) and the spike count from a
log-normal one (median ``--spikes``, sd of the log 0.35). The defaults, 0.8 s and 8000
spikes, are this generator's assumption for the real set's typical recording, not a
published figure: ``--stats`` prints the same statistics for a real SHD file, to check
them and re-run with ``--duration``/``--spikes`` set from it.

Class signal: class ``c`` has three "formant" tracks, channels that move linearly in time
(start and slope fixed per class); a recording's spikes sit on its class's tracks
(Gaussian spread of 12 channels) with a random channel offset (+-20, a speaker) and time
stretch (+-10 %), and 20 % of them are uniform background.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

CHANNELS = 700
CLASSES = 20
KEYS = [f"{lang}-{d}" for lang in ("english", "german") for d in range(10)]
SPLITS = {"train": 8156, "test": 2264}


def recording(rng, tracks: np.ndarray, duration: float, spikes: float):
    """Spike times (s, sorted) and units of one recording of the class with ``tracks``."""
    n = max(1, int(rng.lognormal(np.log(spikes), 0.35) * duration / 0.8))
    t = rng.uniform(0.0, duration, n)
    background = rng.random(n) < 0.2
    k = rng.integers(0, len(tracks), n)
    stretch = rng.uniform(0.9, 1.1)
    centre = tracks[k, 0] + tracks[k, 1] * (t / duration) * stretch + rng.integers(-20, 21)
    units = np.rint(centre + rng.normal(0.0, 12.0, n))
    units = np.where(background, rng.integers(0, CHANNELS, n), units)
    keep = (units >= 0) & (units < CHANNELS)
    order = np.argsort(t[keep], kind="stable")
    return t[keep][order], units[keep][order].astype(np.uint16)


def class_tracks(seed: int) -> np.ndarray:
    """``[classes, 3, 2]``: start channel and channel drift over a recording per formant."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(60, CHANNELS - 60, (CLASSES, 3))
    drift = rng.uniform(-150, 150, (CLASSES, 3))
    return np.stack([start, drift], -1)


def write_split(path: Path, n: int, tracks, rng, duration: float, spikes: float) -> dict:
    """Write ``n`` recordings; returns their mean duration and spike count."""
    import h5py

    labels = np.arange(n) % CLASSES
    rng.shuffle(labels)
    speakers = rng.integers(0, 10, n)
    path.parent.mkdir(parents=True, exist_ok=True)
    durations, counts = [], []
    with h5py.File(path, "w") as f:
        vt = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.dtype(np.float32)))
        vu = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.dtype(np.uint16)))
        for i, c in enumerate(labels):
            d = float(np.clip(rng.normal(duration, 0.15), 0.4, 1.4))
            t, u = recording(rng, tracks[c], d, spikes)
            vt[i], vu[i] = t.astype(np.float32), u
            durations.append(d)
            counts.append(len(t))
        f.create_dataset("labels", data=labels.astype(np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in KEYS]))
        f.create_dataset("extra/speaker", data=speakers.astype(np.uint16))
        f.create_dataset("extra/meta_info/gender", data=np.array([b"female"] * n))
        f.create_dataset("extra/meta_info/age", data=np.full(n, 30, dtype=np.uint16))
        f.create_dataset("extra/meta_info/body_height", data=np.full(n, 170, dtype=np.uint16))
    return {"recordings": n, "mean_duration_s": float(np.mean(durations)),
            "mean_spikes": float(np.mean(counts))}  # fmt: skip


def write(root: Path, train: int, test: int, *, duration=0.8, spikes=8000.0, seed=0) -> dict:
    """``root/SHD/shd_{train,test}.h5``; returns each split's statistics."""
    tracks = class_tracks(seed)
    rng = np.random.default_rng(seed + 1)
    folder = Path(root) / "SHD"
    return {
        split: write_split(folder / f"shd_{split}.h5", n, tracks, rng, duration, spikes)
        for split, n in (("train", train), ("test", test))
    }


def stats(path: Path) -> dict:
    """Recording duration (last spike, s) and spikes per recording of an SHD-format file."""
    import h5py

    with h5py.File(path, "r") as f:
        times = f["spikes/times"]
        last = np.array([float(t[-1]) if len(t) else 0.0 for t in times])
        counts = np.array([len(t) for t in times])

    def summary(x: np.ndarray) -> dict:
        p5, p50, p95 = np.percentile(x, [5, 50, 95])
        return {"mean": float(x.mean()), "p5": float(p5), "p50": float(p50), "p95": float(p95)}

    return {"recordings": len(counts), "duration_s": summary(last), "spikes": summary(counts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, nargs="?")
    parser.add_argument("--train", type=int, default=SPLITS["train"])
    parser.add_argument("--test", type=int, default=SPLITS["test"])
    parser.add_argument("--duration", type=float, default=0.8, help="mean duration (s)")
    parser.add_argument("--spikes", type=float, default=8000.0, help="median spikes per 0.8 s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stats", type=Path, help="print an SHD file's statistics and exit")
    args = parser.parse_args(argv)
    if args.stats is not None:
        print(stats(args.stats))
        return 0
    if args.root is None:
        parser.error("give the folder to write (or --stats FILE)")
    print(write(args.root, args.train, args.test, duration=args.duration, spikes=args.spikes,
                seed=args.seed))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
