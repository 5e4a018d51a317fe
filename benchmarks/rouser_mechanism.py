"""Rouser's mechanism on Yin-Yang: from a poor initial threshold, trained thresholds revive
dead neurons where fixed thresholds stay stuck; and a grid over the initial threshold
(the paper's Fig. 2, on a built-in task). Mean ± std over seeds.

Setup (the paper's: spiking output layer, MSE on output spike rates, same surrogate for
both arms): Yin-Yang 5-H-3, LIF tau_mem 20 / tau_syn 5, surrogate ``rouser_exponential``
(s 1.5, tau 3.75), Adam lr 3e-3. Only the threshold differs between the arms: fixed
(``--grad rouser`` with ``train_threshold=false``) or trained (``--lr-threshold``). The
weights are drawn at the scale of the default threshold 1 whatever the initial threshold
(``weight_gain = 4 / Th_init``), so a large Th_init means neurons that rarely or never fire.

    nice -n 10 python benchmarks/rouser_mechanism.py     # ~6 minutes on one thread
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from snnkit.train import RunConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]


def one_run(th: float, trained: bool, seed: int, args) -> dict:
    cfg = RunConfig(
        grad="rouser",
        seed=seed,
        epochs=args.epochs,
        hidden=str(args.hidden),
        schedule="none",
        readout="spiking",
        loss="spike_count_mse",
        lr_threshold=args.lr_threshold if trained else None,
        dataset_options={"size": args.size},
        neuron_options={"threshold": th},
        layer_options={"weight_gain": 4.0 / th, "train_threshold": trained},
    )
    trainer = Trainer(cfg)
    history = []
    for epoch in range(1, args.epochs + 1):
        m = trainer.train_epoch(epoch)
        out_theta = trainer.model.output.params.theta().detach()
        history.append(
            {
                "epoch": epoch,
                "test_accuracy": m.test_accuracy,
                "train_loss": m.train_loss,
                "dead_hidden": m.dead_fraction[0],
                "threshold_hidden": m.threshold[0],
                "threshold_output_mean": out_theta.mean().item(),
            }
        )
    return {"th_init": th, "trained": trained, "seed": seed, "history": history}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: list[dict], thresholds: list[float]) -> list[dict]:
    rows = []
    for th in thresholds:
        for trained in (False, True):
            final = [
                r["history"][-1] for r in runs if r["th_init"] == th and r["trained"] == trained
            ]
            acc = mean_std([f["test_accuracy"] for f in final])
            dead = mean_std([f["dead_hidden"] for f in final])
            theta = mean_std([f["threshold_hidden"]["mean"] for f in final])
            rows.append(
                {"th_init": th, "trained": trained, "accuracy": acc, "dead": dead, "theta": theta}
            )
    return rows


def table(rows: list[dict], args) -> str:
    lines = [
        f"Yin-Yang 5-{args.hidden}-3 (spiking output, spike-rate MSE), {args.size} training "
        f"samples, {args.epochs} epochs, {args.seeds} seeds (mean ± std); trained thresholds "
        f"at lr {args.lr_threshold}, weights at 3e-3.",
        "",
        "| Th_init | thresholds | test accuracy | dead hidden neurons | final hidden Th (mean) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        (a, sa), (d, sd), (t, st) = r["accuracy"], r["dead"], r["theta"]
        kind = "trained (Rouser)" if r["trained"] else "fixed"
        lines.append(
            f"| {r['th_init']:g} | {kind} | {a:.1%} ± {sa:.1%} | {d:.1%} ± {sd:.1%} | {t:.2f} ± {st:.2f} |"
        )
    return "\n".join(lines) + "\n"


def figures(runs, rows, args, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    # mechanism: per-epoch curves at the poor initial threshold
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    epochs = list(range(1, args.epochs + 1))
    for trained, colour in ((False, "tab:red"), (True, "tab:blue")):
        sel = [r for r in runs if r["th_init"] == args.poor and r["trained"] == trained]
        label = "trained Th (Rouser)" if trained else "fixed Th"
        for ax, key in zip(axes, ("test_accuracy", "dead_hidden"), strict=True):
            per_epoch = [[r["history"][e - 1][key] for r in sel] for e in epochs]
            mu = [statistics.mean(v) for v in per_epoch]
            sd = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in per_epoch]
            ax.plot(epochs, mu, color=colour, label=label)
            ax.fill_between(
                epochs, [m - s for m, s in zip(mu, sd, strict=True)], [m + s for m, s in zip(mu, sd, strict=True)],
                color=colour, alpha=0.2,
            )  # fmt: skip
    axes[0].axhline(1 / 3, color="grey", ls=":", label="chance")
    axes[0].set(xlabel="epoch", ylabel="test accuracy", title=f"Th_init = {args.poor:g}")
    axes[1].set(xlabel="epoch", ylabel="dead hidden neurons (fraction)", ylim=(0, 1))
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "mechanism.png", dpi=120)
    plt.close(fig)
    # grid: final accuracy against the initial threshold
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for trained, colour in ((False, "tab:red"), (True, "tab:blue")):
        sel = [r for r in rows if r["trained"] == trained]
        ax.errorbar(
            [r["th_init"] for r in sel], [r["accuracy"][0] for r in sel],
            yerr=[r["accuracy"][1] for r in sel], color=colour, marker="o", capsize=3,
            label="trained Th (Rouser)" if trained else "fixed Th",
        )  # fmt: skip
    ax.axhline(1 / 3, color="grey", ls=":", label="chance")
    ax.set(xscale="log", xlabel="initial threshold Th_init", ylabel="test accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "threshold_grid.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thresholds", default="1,2,4,8,16,24,32,48")
    parser.add_argument("--poor", type=float, default=32.0, help="Th_init of the curves")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--size", type=int, default=2000, help="training samples")
    parser.add_argument("--lr-threshold", type=float, default=0.1)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/rouser_mechanism.json"
    )
    parser.add_argument("--figures", type=Path, default=ROOT / "docs/methods/rouser_figures")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the runs already in --json, run the rest"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    runs, seconds = [], 0.0
    if args.reuse and args.json.exists():
        old = json.loads(args.json.read_text())
        runs, seconds = [r for r in old["runs"] if r["th_init"] in thresholds], old["seconds"]
    done = {(r["th_init"], r["trained"], r["seed"]) for r in runs}
    start = time.perf_counter()
    for th in thresholds:
        for trained in (False, True):
            for seed in range(args.seeds):
                if (th, trained, seed) in done:
                    continue
                runs.append(one_run(th, trained, seed, args))
                last = runs[-1]["history"][-1]
                print(
                    f"Th_init {th:g} {'trained' if trained else 'fixed  '} seed {seed}: "
                    f"test {last['test_accuracy']:.1%}, dead {last['dead_hidden']:.0%}",
                    flush=True,
                )
    seconds += time.perf_counter() - start
    rows = summarise(runs, thresholds)
    text = table(rows, args)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "settings": {k: str(v) for k, v in vars(args).items()},
                "seconds": seconds,
                "summary": rows,
                "runs": runs,
            },
            indent=1,
        )  # fmt: skip
    )
    args.figures.mkdir(parents=True, exist_ok=True)
    (args.figures / "rouser_mechanism.md").write_text(
        text + f"\nTotal {seconds / 60:.1f} CPU-minutes, one thread, on a shared 2-core machine.\n"
    )
    figures(runs, rows, args, args.figures)


if __name__ == "__main__":
    main()
