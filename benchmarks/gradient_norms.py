"""The EXODUS paper's claim, measured: gradient norms of IF neurons vs sequence length T.

EXODUS (= BPTT with the reset's gradient taken through) against SLAYER's gradient
(= BPTT with the reset detached, ``bptt-detached-reset``), and plain ``bptt`` as a
check that EXODUS computes exactly BPTT's gradient.

Setup, per seed: one spiking layer of IF neurons (alpha = 1, threshold 1, reset by
subtracting the threshold), 64 inputs -> 64 neurons, batch 8, Bernoulli input spikes
(p = 0.1) and weights N(0.02, 0.1^2) (so most neurons spike moderately); the input
raster is drawn once at the largest T and sliced, so every T sees the same weights and
the same first steps. Loss = sum_t sum_b sum_n c_n a_t[b, n], with c ~ N(0, 1) fixed.
We report ||dL/dW|| (Frobenius) and the RMS of dL/dI_0, the error reaching the first
step's input current, each as the mean over 5 seeds, in float64.

    python benchmarks/gradient_norms.py          # writes docs/methods/exodus_figures/
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from snnkit.neurons import IF
from snnkit.registry import get_registry
from snnkit.surrogates import Exponential, FastSigmoid, Surrogate

STEPS = (25, 50, 100, 200, 400, 800)
SEEDS = (0, 1, 2, 3, 4)
N_IN, N_OUT, BATCH = 64, 64, 8
P_IN, W_MEAN, W_STD = 0.1, 0.02, 0.1
METHODS = ("exodus", "bptt-detached-reset", "bptt", "slayer")
OUT = Path(__file__).resolve().parents[1] / "docs" / "methods" / "exodus_figures"
F64 = torch.float64
SLAYER_DIFFS: list[float] = []  # SLAYER vs bptt-detached-reset, max relative |dL/dW| difference


@dataclass
class Problem:
    weight: torch.Tensor  # [out, in]
    spikes: torch.Tensor  # [T_max, B, in]
    readout: torch.Tensor  # [out]


def problem(seed: int, steps: int) -> Problem:
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(N_OUT, N_IN, generator=gen, dtype=F64) * W_STD + W_MEAN
    spikes = (torch.rand(steps, BATCH, N_IN, generator=gen, dtype=F64) < P_IN).to(F64)
    readout = torch.randn(N_OUT, generator=gen, dtype=F64)
    return Problem(weight, spikes, readout)


def gradients(method: str, prob: Problem, steps: int, surrogate: Surrogate):
    """(||dL/dW||, RMS dL/dI_0, spike rate, dL/dW) for the first ``steps`` steps."""
    layer = get_registry().gradient(method).layer(IF(), N_IN, N_OUT, surrogate=surrogate)
    layer = layer.to(F64)
    x = prob.spikes[:steps]
    current = torch.matmul(x, prob.weight.t()).requires_grad_()
    spikes, _ = layer.dynamics(current, layer.initial_state(current))
    loss = (spikes * prob.readout).sum()
    (g_current,) = torch.autograd.grad(loss, current)
    g_weight = torch.einsum("tbo,tbi->oi", g_current, x)  # dL/dW = sum_t g_t x_t^T
    rms0 = g_current[0].pow(2).mean().sqrt()
    return float(g_weight.norm()), float(rms0), float(spikes.detach().mean()), g_weight


def measure(surrogate: Surrogate, methods=METHODS, steps=STEPS, seeds=SEEDS):
    """{method: {T: [(norm, rms0) per seed]}}, spike rates {T: [per seed]}, max |exodus-bptt|."""
    table = {m: {t: [] for t in steps} for m in methods}
    rates = {t: [] for t in steps}
    worst = 0.0
    for seed in seeds:
        prob = problem(seed, max(steps))
        for t in steps:
            grads = {}
            for m in methods:
                norm, rms0, rate, grads[m] = gradients(m, prob, t, surrogate)
                table[m][t].append((norm, rms0))
            rates[t].append(rate)
            if "bptt" in grads and "exodus" in grads:
                diff = (grads["exodus"] - grads["bptt"]).abs().max()
                worst = max(worst, float(diff / grads["bptt"].abs().max()))
            if "slayer" in grads:
                ref = grads["bptt-detached-reset"]
                SLAYER_DIFFS.append(float((grads["slayer"] - ref).abs().max() / ref.abs().max()))
    return table, rates, worst


def mean(values) -> float:
    return sum(values) / len(values)


def slope(steps, values) -> float:
    """Least-squares slope of log(value) against log(T)."""
    xs = [math.log(t) for t in steps]
    ys = [math.log(v) for v in values]
    mx, my = mean(xs), mean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def summary(table, steps=STEPS):
    """{method: (mean norms per T, mean rms0 per T, slope of norm, slope of rms0)}."""
    out = {}
    for m, by_t in table.items():
        norms = [mean([v[0] for v in by_t[t]]) for t in steps]
        rms0 = [mean([v[1] for v in by_t[t]]) for t in steps]
        out[m] = (norms, rms0, slope(steps, norms), slope(steps, rms0))
    return out


def plot(table, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    styles = {
        "exodus": dict(color="C0", marker="o", lw=2),
        "bptt-detached-reset": dict(color="C3", marker="s", lw=2),
        "bptt": dict(color="k", marker="", ls="--", lw=1),
        "slayer": dict(color="C1", marker="x", ls=":", lw=1),
    }
    labels = {
        "exodus": "EXODUS (reset gradient through)",
        "bptt-detached-reset": "SLAYER / BPTT, reset detached",
        "bptt": "BPTT (autograd, reset through)",
        "slayer": "SLAYER plugin (scale_rho = 1)",
    }
    for k, (ax, ylabel) in enumerate(
        zip(axes, ("||dL/dW||  (Frobenius)", "RMS dL/dI_0  (error at the first step)"), strict=True)
    ):
        for m, by_t in table.items():
            steps = sorted(by_t)
            vals = [[v[k] for v in by_t[t]] for t in steps]
            ax.plot(steps, [mean(v) for v in vals], label=labels.get(m, m), **styles.get(m, {}))
            ax.fill_between(
                steps,
                [min(v) for v in vals],
                [max(v) for v in vals],
                color=styles.get(m, {}).get("color", "grey"),
                alpha=0.15 if m not in ("bptt", "slayer") else 0.0,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(list(STEPS), [str(t) for t in STEPS])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("sequence length T (steps)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(main, rates, worst, extra, elapsed: float) -> str:
    s = summary(main)
    ex, det, bp = s["exodus"], s["bptt-detached-reset"], s["bptt"]
    lines = [
        "# Gradient norms of IF neurons vs sequence length (EXODUS's claim)",
        "",
        "Generated by `benchmarks/gradient_norms.py` (float64, CPU, "
        f"{len(SEEDS)} seeds, {elapsed:.0f} s). Plot: `gradient_norms.png`.",
        "",
        f"Setup: one layer of IF neurons (alpha = 1, threshold 1, reset subtracts the "
        f"threshold), {N_IN} inputs -> {N_OUT} neurons, batch {BATCH}, Bernoulli input "
        f"spikes p = {P_IN}, weights N({W_MEAN}, {W_STD}^2), the same weights for every T "
        "and the input drawn once at T = 800 and sliced. Loss = sum_t sum_n c_n a_t "
        "(c ~ N(0,1) fixed). Surrogate: **exponential, w = 0.5, c = 1** "
        "(`s = 2 exp(-2|v - 1|)`, peak s*theta = 2; the paper's single exponential), "
        "evaluated at the pre-reset membrane. Values are means over the seeds.",
        "",
        "| T | spike rate | EXODUS ‖dL/dW‖ | detached ‖dL/dW‖ | BPTT ‖dL/dW‖ | "
        "detached / EXODUS | EXODUS RMS dL/dI₀ | detached RMS dL/dI₀ |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k, t in enumerate(STEPS):
        lines.append(
            f"| {t} | {mean(rates[t]):.3f} | {ex[0][k]:.4g} | {det[0][k]:.4g} | {bp[0][k]:.4g} "
            f"| {det[0][k] / ex[0][k]:.2f} | {ex[1][k]:.4g} | {det[1][k]:.4g} |"
        )
    lines += [
        f"| log-log slope | | {ex[2]:.2f} | {det[2]:.2f} | {bp[2]:.2f} | | {ex[3]:.2f} "
        f"| {det[3]:.2f} |",
        "",
        f"EXODUS vs autograd BPTT (reset through), largest relative difference of dL/dW "
        f"over all T and seeds: {worst:.1e} (same gradient).",
        "",
        "The loss sums over T steps, so even a well-behaved gradient norm grows with T "
        "(slope up to 1 if the per-step contributions add coherently, about 0.5 if they "
        "add like a random walk). The error reaching the first step, RMS dL/dI₀, "
        "isolates the backward recursion: with the reset detached the IF membrane "
        "carries every later error back undamped (f_t = alpha = 1), so dL/dI₀ sums all "
        "of them; with the reset through, f_t = 1 - theta*s_t damps it at every step "
        "near threshold.",
        "",
        *slayer_section(s),
        "## Other surrogates (slopes of the same fit, EXODUS vs detached reset)",
        "",
        "With the reset through, f_t = 1 - theta*s_t; |f_t| <= 1 for every membrane "
        "value exactly when theta*s <= 2, which bounds the backward recursion. A "
        "surrogate peaking above 2 gives |f_t| > 1 for membranes close to threshold: "
        "whether the gradient then grows depends on how often membranes sit there, so "
        "the peak is a property to check, not a hyper-parameter EXODUS is immune to.",
        "",
        "| surrogate | peak theta*s | EXODUS slope ‖dL/dW‖ | detached slope ‖dL/dW‖ | "
        "EXODUS slope dL/dI₀ | detached slope dL/dI₀ | EXODUS ‖dL/dW‖ at T=800 | "
        "detached at T=800 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, peak, table in extra:
        e, d = summary(table)["exodus"], summary(table)["bptt-detached-reset"]
        lines.append(
            f"| {name} | {peak:g} | {e[2]:.2f} | {d[2]:.2f} | {e[3]:.2f} | {d[3]:.2f} "
            f"| {e[0][-1]:.4g} | {d[0][-1]:.4g} |"
        )
    return "\n".join(lines) + "\n"


def slayer_section(s) -> list[str]:
    """SLAYER's gradient, and the scale_rho that would give it EXODUS's size at each T."""
    if "slayer" not in s:
        return []
    ex, sl = s["exodus"], s["slayer"]
    lines = [
        "## SLAYER (`--grad slayer`) and its gradient scale `scale_rho`",
        "",
        "The SLAYER plugin's gradient equals the detached-reset one (largest relative "
        f"difference of dL/dW over all T and seeds: {max(SLAYER_DIFFS):.1e}). In one layer "
        "it is proportional to `scale_rho` (the surrogate's scale c), so the scale that "
        "would give it EXODUS's size is the ratio below: it has to shrink with T, which is "
        "the hand-tuned gradient scale SLAYER needs and EXODUS does without. In a network "
        "of L layers the factor enters L times.",
        "",
        "| T | SLAYER ‖dL/dW‖ | EXODUS ‖dL/dW‖ | scale_rho matching ‖dL/dW‖ | "
        "scale_rho matching RMS dL/dI₀ |",
        "|---:|---:|---:|---:|---:|",
    ]
    for k, t in enumerate(STEPS):
        lines.append(
            f"| {t} | {sl[0][k]:.4g} | {ex[0][k]:.4g} | {ex[0][k] / sl[0][k]:.3f} "
            f"| {ex[1][k] / sl[1][k]:.3f} |"
        )
    lines += [
        f"| log-log slope | {sl[2]:.2f} | {ex[2]:.2f} | {ex[2] - sl[2]:.2f} "
        f"| {ex[3] - sl[3]:.2f} |",
        "",
    ]
    return lines


EXTRA: tuple[tuple[str, float, Surrogate], ...] = (
    ("fast_sigmoid k=25", 1.0, FastSigmoid()),
    ("exponential w=0.25", 4.0, Exponential(width=0.25)),
    ("exponential w=0.1", 10.0, Exponential(width=0.1)),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-extra", action="store_true", help="skip the other surrogates")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny tensors; extra threads only add synchronisation
    started = time.perf_counter()
    main_table, rates, worst = measure(Exponential())
    extra = []
    if not args.no_extra:
        for name, peak, surrogate in EXTRA:
            table, _, _ = measure(surrogate, methods=("exodus", "bptt-detached-reset"))
            extra.append((name, peak, table))
    elapsed = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(main_table, rates, worst, extra, elapsed)
    (args.out / "gradient_norms.md").write_text(text)
    plot(
        main_table,
        args.out / "gradient_norms.png",
        "IF layer 64->64, exponential surrogate (w=0.5): gradient vs T, mean and range of 5 seeds",
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
