"""The ``snnkit`` command line (Typer + rich).

Exit codes: 0 success, 1 the job failed, 2 bad usage (one line, no traceback).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from snnkit.distributed import PeerLost
from snnkit.errors import JobFailed, SnnkitError
from snnkit.hookspecs import KINDS
from snnkit.interrupts import stop_on_signals
from snnkit.launch import LAUNCHED, WorkersFailed
from snnkit.paths import writable_dir, writable_file

if TYPE_CHECKING:
    from snnkit.train import RunConfig

# click's UsageError (a wrong type, an unknown option, a missing value), found without
# importing click's internals: typer's BadParameter derives from it
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _Commands(TyperGroup):
    """Typer's command group, with the usage errors Typer itself finds printed as one line
    on stderr (``error: ...; see `snnkit run --help```), exit code 2, like snnkit's own."""

    def main(self, args=None, *rest, standalone_mode: bool = True, **kwargs):
        global _ARGS
        _ARGS = list(sys.argv[1:] if args is None else args)  # what `--nproc` relaunches
        if not standalone_mode:
            return super().main(_ARGS, *rest, standalone_mode=False, **kwargs)
        try:
            code = super().main(_ARGS, *rest, standalone_mode=False, **kwargs)
        except _UsageError as exc:
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has shown the help
                where = exc.ctx.command_path if exc.ctx is not None else "snnkit"
                message = " ".join(exc.format_message().split()).rstrip(".")
                err_console.print(
                    Text.assemble(("error:", "bold red"), f" {message}; see `{where} --help`"),
                    soft_wrap=True,
                )
            sys.exit(exc.exit_code)
        except typer.Abort:
            err_console.print("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="snnkit",
    help="Train spiking neural networks with pluggable gradient methods.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Commands,
)
_ARGS: list[str] = []  # this invocation's arguments (after `snnkit`)
# user text (paths, option values) is never read as markup or emoji codes (':x:')
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def user_errors(fn):
    """Turn :class:`SnnkitError` into one red line on stderr and exit code 2, a
    :class:`JobFailed` into one line and exit code 1, a signal into one line saying how to
    continue and exit code 128 + its number."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with stop_on_signals():  # SIGTERM and SIGHUP end a command like Ctrl-C
                return fn(*args, **kwargs)
        except SnnkitError as exc:
            err_console.print(Text.assemble(("error:", "bold red"), f" {exc}"), soft_wrap=True)
            raise typer.Exit(2) from None
        except PeerLost as exc:  # under `run --nproc` the launcher names the first failure
            if os.environ.get(LAUNCHED) != "1":
                err_console.print(Text.assemble(("failed:", "bold red"), f" {exc}"), soft_wrap=True)
            raise typer.Exit(1) from None
        except WorkersFailed as exc:  # a worker of `run --nproc` failed
            if not exc.reported:
                err_console.print(Text.assemble(("failed:", "bold red"), f" {exc}"), soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except JobFailed as exc:
            err_console.print(Text.assemble(("failed:", "bold red"), f" {exc}"), soft_wrap=True)
            raise typer.Exit(1) from None
        except (MemoryError, RuntimeError) as exc:
            if not isinstance(exc, MemoryError) and not _out_of_memory(exc):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            err_console.print(
                Text.assemble(
                    ("failed:", "bold red"),
                    f" out of memory ({first}); use a smaller network, batch or dataset",
                ),
                soft_wrap=True,
            )
            raise typer.Exit(1) from None
        except KeyboardInterrupt as exc:
            err_console.print(_interrupted(exc), soft_wrap=True)
            raise typer.Exit(getattr(exc, "exit_code", 130)) from None

    return wrapper


def _out_of_memory(exc: RuntimeError) -> bool:
    """torch's allocation failures (CPU and CUDA) are RuntimeErrors, told by their text."""
    text = str(exc).lower()
    return "can't allocate memory" in text or "out of memory" in text


def _interrupted(exc: KeyboardInterrupt) -> Text:
    """One line: what stopped, what is kept, how to continue."""
    line = Text("interrupted", style="yellow")
    name = getattr(exc, "name", None)
    if name:
        line.append(f" by {name}")
    run_id = getattr(exc, "run_id", None)
    checkpoint = getattr(exc, "checkpoint", None)
    if checkpoint is None:
        return line
    done = exc.epochs_done
    recorded = f"run {run_id} recorded as interrupted in {exc.db}" if run_id is not None else ""
    if not done:
        line.append(" before the first epoch finished: nothing to resume")
        return line.append(f" ({recorded})" if recorded else "")
    line.append(f": {done} finished epoch{'s' * (done != 1)} checkpointed in {checkpoint}")
    if recorded:
        line.append(f", {recorded}; continue with: snnkit run --resume --run-id {run_id}")
        line.append(f" --db {exc.db}" if exc.db != "snnkit-results.db" else "")
    else:
        line.append(f"; continue with: snnkit run --resume --out {Path(checkpoint).parent}")
    return line


ThreadsOption = Annotated[
    int | None,
    typer.Option(
        help="CPU threads (default: the CPUs this process may use, by affinity and cgroup quota)."
    ),
]


def _registry():
    """The plugin registry, with one warning line on stderr per plugin that failed to load
    (``snnkit plugins`` shows the details). Every command that uses plugins calls it once."""
    from snnkit.registry import get_registry

    registry = get_registry()
    for p in registry.failures:
        err_console.print(
            Text.assemble(
                ("warning:", "yellow"),
                f" plugin '{p.name}' ({p.distribution} {p.version}) failed to load: {p.error};"
                " `snnkit plugins` shows details",
            ),
            soft_wrap=True,
        )
    return registry


@contextlib.contextmanager
def _one_line_warnings():
    """snnkit's own warnings (:class:`SilentLayerWarning`) as one line on stderr."""
    from snnkit.errors import SilentLayerWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SilentLayerWarning):
            err_console.print(Text.assemble(("warning:", "yellow"), f" {message}"), soft_wrap=True)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def _parse_options(pairs: list[str] | None, what: str) -> dict:
    """``["tau_mem=20", "tau_syn=5"]`` -> ``{"tau_mem": 20.0, "tau_syn": 5.0}``."""
    out = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SnnkitError(f"{what} {pair!r} is not KEY=VALUE, e.g. tau_mem=20")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip().replace("-", "_")] = value
    return out


@app.command()
@user_errors
def run(
    ctx: typer.Context,
    neuron: Annotated[str, typer.Option(help="Neuron model (see `snnkit plugins`).")] = "lif",
    grad: Annotated[
        str | None,
        typer.Option(
            help="Gradient method (default: $SNNKIT_DEFAULT_GRAD, else exodus, else bptt)."
        ),
    ] = None,
    dataset: Annotated[str, typer.Option(help="Task (see `snnkit datasets`).")] = "yinyang",
    hidden: Annotated[
        str | None, typer.Option(help="Hidden layer sizes, e.g. 120 or 200-200.")
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            help="Layers, e.g. 16c5-a2-32c3-a2-128-10 (conv, pool, dense; the last is the "
            "output), or a .toml file; see docs/guide.md. Replaces --hidden."
        ),
    ] = None,
    recurrent: Annotated[bool, typer.Option(help="Recurrent hidden layers.")] = False,
    surrogate: Annotated[str | None, typer.Option(help="Surrogate derivative.")] = None,
    loss: Annotated[str | None, typer.Option(help="Loss (default from the dataset).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size.")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.")] = None,
    lr_threshold: Annotated[
        float | None,
        typer.Option(help="Learning rate of trained thresholds (own Adam group; default --lr)."),
    ] = None,
    clip_grad: Annotated[
        float | None,
        typer.Option(
            help="Clip the gradient's global norm to this before each step (default: never)."
        ),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(help="Learning-rate schedule: none, cosine, or step:GAMMA:EVERY (epochs)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[
        str | None, typer.Option(help="float32 or float64 (default: the recipe's, else float32).")
    ] = None,
    dt: Annotated[float | None, typer.Option(help="Time step (ms).")] = None,
    init_rate: Annotated[
        float | None,
        typer.Option(
            help="Scale the input weights at the start so the first hidden layer fires at this "
            "rate (Hz) on training data; 0: off (default: the recipe's, else off)."
        ),
    ] = None,
    readout: Annotated[
        str | None,
        typer.Option(
            help="Output layer: li (leaky-integrator voltage) or spiking (spike times/counts)."
        ),
    ] = None,
    neuron_opt: Annotated[
        list[str] | None,
        typer.Option(
            "--neuron-opt",
            "-n",
            help="Neuron parameter KEY=VALUE (repeatable), e.g. -n tau_mem=20.",
        ),
    ] = None,
    layer_opt: Annotated[
        list[str] | None,
        typer.Option("--layer-opt", help="Method layer option KEY=VALUE (repeatable)."),
    ] = None,
    data_opt: Annotated[
        list[str] | None, typer.Option("--data-opt", help="Dataset option KEY=VALUE (repeatable).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="SNNKIT_DATA",
            help="Where file-based datasets (nmnist, dvsgesture, shd, ssc) live; default $SNNKIT_DATA.",
        ),
    ] = None,
    db: Annotated[Path, typer.Option(help="Results database (SQLite).")] = Path(
        "snnkit-results.db"
    ),
    out: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoint directory (default runs/<task>-<method>-<neuron>-<setting>-seed<N>)."
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue an interrupted run with its settings: the most recent one in --db, "
            "or --run-id, or the checkpoint in --out."
        ),
    ] = False,
    run_id: Annotated[
        int | None, typer.Option("--run-id", help="With --resume: the run of --db to continue.")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the final metrics as JSON here.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    threads: ThreadsOption = None,
    nproc: Annotated[
        int,
        typer.Option(
            help="Train data-parallel (DDP) in N processes on this machine, as torchrun "
            "--nproc-per-node N does; --batch-size stays the global batch, --threads is per "
            "process. See docs/distributed.md."
        ),
    ] = 1,
) -> None:
    """Train a network and record the run (defaults: a small network on Yin-Yang)."""
    from snnkit.distributed import world_from_env
    from snnkit.threads import use_threads
    from snnkit.train import RunConfig, resolve_run
    from snnkit.train import run as train_run

    world = world_from_env()
    if not 1 <= nproc <= 1024:
        raise SnnkitError(f"--nproc must be between 1 and 1024, got {nproc}")
    if nproc > 1 and world.active:
        raise SnnkitError(
            "--nproc starts its own processes; under torchrun leave it out (torchrun's "
            "--nproc-per-node sets the number)"
        )
    use_threads(threads)
    registry = _registry()
    options = _config_options(ctx)
    if options["grad"] is None:
        options["grad"] = default_method(registry)
    given = {p for p in _setting_params(ctx) if _on_command_line(ctx, p)}
    if run_id is not None and not resume:
        raise SnnkitError(f"--run-id {run_id} names a run to continue; add --resume")
    if resume:
        explicit_out = out if _on_command_line(ctx, "out") else None
        out = _resume_folder(db, explicit_out, run_id, given, options)
        config = _resumed_config(out, options, given)
    else:
        config = RunConfig(**options)
    if json_file is not None:
        writable_file(json_file, "--json")
    resolved = resolve_run(config, registry)  # once: the later steps take it as it is
    if nproc > 1:  # every mistake found here, once, before any worker starts
        from snnkit.launch import launch, strip_option
        from snnkit.train import check_outputs

        check_outputs(resolved, db, out, resume)
        launch(nproc, strip_option(_ARGS, "--nproc"), threads)
        return
    with _one_line_warnings():
        result = train_run(
            resolved, db=db, out=out, resume=resume, progress=progress, console=console
        )
    if not world.main:  # rank 0 reports and writes --json
        return
    summary = result.summary()
    _print_result(summary, registry)
    if json_file is not None:
        tmp = json_file.with_suffix(json_file.suffix + ".tmp")
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(json_file)
    console.print(
        Text(
            f"recorded as run {result.run_id} in {db}; checkpoint {result.checkpoint}"
            + (f"; metrics in {json_file}" if json_file is not None else "")
        )
    )


# `snnkit run`'s options are RunConfig's fields (tests/test_cli.py checks the two against
# each other): same names, but for these, which take KEY=VALUE pairs, and for the fields
# that only recipes set
_OPTION_FIELDS = {"neuron_opt": "neuron_options", "layer_opt": "layer_options",
                  "data_opt": "dataset_options"}  # fmt: skip
RECIPE_ONLY_FIELDS = ("readout_tau",)


def _setting_params(ctx: typer.Context) -> list[str]:
    """A command's parameters that choose what is trained, in the order declared: those of
    RunConfig's fields (not where things are written, or how the run is shown)."""
    from snnkit.train import RunConfig

    fields = {f.name for f in dataclasses.fields(RunConfig)}
    return [p.name for p in ctx.command.params if _OPTION_FIELDS.get(p.name, p.name) in fields]


def _config_options(ctx: typer.Context) -> dict:
    """The RunConfig fields a command's parameters set (KEY=VALUE pairs parsed)."""
    options = {}
    for name in _setting_params(ctx):
        value = ctx.params[name]
        if name in _OPTION_FIELDS:
            value = _parse_options(value, "--" + name.replace("_", "-"))
        elif isinstance(value, Path):
            value = str(value)
        options[_OPTION_FIELDS.get(name, name)] = value
    return options


def _on_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _resume_folder(db: Path, out: Path | None, run_id: int | None, given, options) -> Path:
    """The checkpoint folder --resume continues: --run-id's, --out, the default folder of
    the given options (the old way: every option repeated), or the most recent
    interrupted run's in --db."""
    from snnkit.results import ResultsStore
    from snnkit.train import RunConfig, default_out_dir, resolve

    if run_id is None and out is not None:
        return out
    if run_id is None and set(given) - {"epochs"}:
        return default_out_dir(resolve(RunConfig(**options)))
    if not db.exists():
        raise SnnkitError(f"nothing to resume: no results database at {db}; pass --db")
    with ResultsStore(db) as store:
        if run_id is not None:
            record = store.get(run_id)
            if record.state == "running":
                raise SnnkitError(
                    f"run {run_id} is still running (pid {record.pid} on {record.host}); "
                    "wait for it or stop it first"
                )
        else:
            candidates = [
                r for r in store.resumable() if r.checkpoint and Path(r.checkpoint).is_file()
            ]
            if not candidates:
                raise SnnkitError(
                    f"nothing to resume in {db}: no interrupted run with a checkpoint; "
                    "start one with `snnkit run`"
                )
            record = candidates[0]
    if not record.checkpoint:
        raise SnnkitError(
            f"run {record.id} has no recorded checkpoint (an older snnkit recorded it); "
            "resume it with --out and its original options"
        )
    folder = Path(record.checkpoint).parent
    if out is not None and out.resolve() != folder.resolve():
        raise SnnkitError(f"run {record.id} checkpoints to {folder}, not --out {out}; drop --out")
    return folder


def _resumed_config(out: Path, options: dict, given) -> RunConfig:
    """The checkpoint's settings, with the options given on the command line on top (the
    checkpoint refuses those that differ, but for --epochs: a run may be extended)."""
    from snnkit.train import CHECKPOINT, saved_config

    config = saved_config(out / CHECKPOINT)
    for name in given:
        field_name = _OPTION_FIELDS.get(name, name)
        value = options[field_name]
        if name in _OPTION_FIELDS:
            value = {**getattr(config, field_name), **value}
        setattr(config, field_name, value)
    return config


def default_method(registry) -> str:
    """The method ``snnkit run`` uses without --grad (:meth:`Registry.default_gradient`)."""
    return registry.default_gradient()


def _print_result(s: dict, registry) -> None:
    cfg = s["config"]
    table = Table(
        title=Text(f"{s['dataset']} · {s['method']} · {s['neuron']} · seed {s['seed']}"),
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column()
    shape = f"arch {cfg['arch']}" if cfg.get("arch") else f"hidden {cfg['hidden']}"
    network = f"{shape}{' recurrent' if cfg['recurrent'] else ''}, loss {cfg['loss']}"
    if registry.gradient(s["method"]).representation != "events":  # event methods have none
        network += f", surrogate {cfg['surrogate']}"
    table.add_row("network", Text(network))
    table.add_row("epochs", str(s["epochs"]))
    table.add_row("test accuracy", f"{s['test_accuracy']:.2%}")
    table.add_row("validation accuracy", f"{s['validation_accuracy']:.2%}")
    table.add_row(
        "test at best validation",
        f"{s['test_accuracy_at_best_validation']:.2%} (epoch {s['best_validation_epoch']})",
    )
    table.add_row("train accuracy", f"{s['train_accuracy']:.2%}")
    table.add_row("seconds / epoch", f"{s['seconds_per_epoch']:.2f} ({s['threads']} CPU threads)")
    table.add_row("peak memory", f"{s['peak_memory_mb']:.0f} MB")
    table.add_row("spike rate / layer", ", ".join(f"{r:.3f}" for r in s["spike_rate"]))
    table.add_row("dead neurons / layer", ", ".join(f"{d:.1%}" for d in s["dead_fraction"]))
    if s.get("skipped_steps"):
        table.add_row("skipped steps", f"{s['skipped_steps']} (non-finite gradient)")
    if s.get("threshold"):
        thresholds = Text(
            ", ".join(
                f"{t['mean']:.3f} ± {t['std']:.3f} [{t['min']:.3f}, {t['max']:.3f}]"
                for t in s["threshold"]
            )
        )
        if min(t["min"] for t in s["threshold"]) <= 0:  # training does not constrain them
            thresholds.append(
                " (≤ 0: such neurons fire at every step; bound them, e.g. rouser's "
                "--layer-opt th_min=0.1)",
                style="yellow",
            )
        table.add_row("thresholds / layer", thresholds)
    table.add_row("run id", str(s["run_id"]))
    console.print(table)


@app.command()
@user_errors
def plugins() -> None:
    """List installed plugins (where from, hooks, failures) and everything they register."""
    registry = _registry()
    console.print(_plugins_table(registry))
    console.print(Text("loaded from", style="bold"))
    for p in registry.plugins:  # whole paths, one line each: never cut or folded
        console.print(Text(f"  {p.name} ({p.module}): {p.location}"), soft_wrap=True)
    console.print(_registrations_table(registry))
    for p in registry.failures:
        console.print(
            Text.assemble(
                ("failed", "red"),
                f" plugin '{p.name}' ({p.distribution} {p.version}, {p.module}): {p.error}",
            ),
            soft_wrap=True,
        )
    for (kind, name), entries in registry.clashes.items():
        dists = ", ".join(e.plugin.distribution for e in entries)
        console.print(
            Text.assemble(("clash", "red"), f" {kind} '{name}' registered by {dists}"),
            soft_wrap=True,
        )


def _plugins_table(registry) -> Table:
    """One row per plugin: its distribution and version, the hooks it implements (with how
    many objects each registered), whether it loaded."""
    table = Table(title="snnkit plugins")
    table.add_column("plugin", no_wrap=True)
    table.add_column("distribution", overflow="fold")
    table.add_column("version", no_wrap=True)
    table.add_column("hooks (registered)")
    table.add_column("status", no_wrap=True)
    for p in registry.plugins:
        counts = Counter(kind for kind, _ in p.provides)
        hooks = [
            f"{hook.removeprefix('snnkit_register_')} {counts[kind]}"
            for kind, hook in KINDS.items()
            if hook in p.hooks
        ]
        status = Text("ok", style="green") if p.error is None else Text("failed", style="red")
        cells = (p.name, p.distribution, p.version, ", ".join(hooks) or "—")
        table.add_row(*(Text(c) for c in cells), status)
    return table


def _registrations_table(registry) -> Table:
    """Every registration (both sides of a clash): kind, plugin, the object's own version,
    and for gradient methods their representation and the neurons they support."""
    table = Table(title="registered")
    table.add_column("name", no_wrap=True)
    for col in ("kind", "plugin", "version", "representation", "neurons supported"):
        table.add_column(col, no_wrap=col != "neurons supported")
    neurons = {}  # each neuron kind with its default parameters, to ask supports()
    for kind in registry.available("neuron"):
        try:
            neurons[kind] = registry.neuron(kind)
        except Exception:  # a plugin neuron without usable defaults: listed, never matched
            pass
    for kind in ("gradient", "neuron", "surrogate", "loss", "dataset"):
        for entry in registry.listing(kind):
            rep, supported = "", ""
            if kind == "gradient":
                rep = entry.obj.representation
                supported = ", ".join(k for k, n in neurons.items() if _supports(entry.obj, n))
            label = Text(entry.name)
            if (kind, entry.name) in registry.clashes:
                label = Text(f"{entry.name} (clash)", style="red")
            version = getattr(entry.obj, "version", "") if kind == "gradient" else ""
            cells = (kind, entry.plugin.name, str(version), rep, supported)
            table.add_row(label, *(Text(c) for c in cells))
    return table


def _supports(method, neuron) -> bool:
    try:
        return method.supports(neuron) is None
    except Exception:  # a plugin's supports() that raises: not supported, listing goes on
        return False


plugin_app = typer.Typer(
    help="Write a new plugin package: `snnkit plugin new NAME [--kind KIND]`.",
    add_completion=False,
    no_args_is_help=True,
)
app.add_typer(plugin_app, name="plugin")


@plugin_app.command("new")
@user_errors
def plugin_new(
    name: Annotated[
        str, typer.Argument(help="What the plugin registers, e.g. my-method (lowercase words).")
    ],
    kind: Annotated[
        str, typer.Option(help="gradient, neuron, surrogate, loss or dataset.")
    ] = "gradient",
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Project folder to create (default ./snnkit-NAME; new or empty)."
        ),
    ] = None,
) -> None:
    """Write an installable plugin package that passes its own tests as generated.

    pyproject with the entry point, the code, README and tests (for a gradient method, the
    conformance suite in float64 through snnkit's pytest plugin).
    """
    from snnkit.scaffold import new_plugin

    project = new_plugin(name, kind, directory, registry=_registry())
    console.print(Text(f"wrote {project}/ ({kind} '{name}'):"))
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        console.print(Text(f"  {path.relative_to(project)}"), soft_wrap=True)
    console.print(Text(f"next: pip install -e {project} && cd {project} && pytest"), soft_wrap=True)


datasets_app = typer.Typer(
    help="List datasets and their status; `snnkit datasets download NAME` fetches one.",
    add_completion=False,
)
app.add_typer(datasets_app, name="datasets")
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="SNNKIT_DATA", help="Data directory; default $SNNKIT_DATA."),
]


@datasets_app.callback(invoke_without_command=True)
@user_errors
def datasets(ctx: typer.Context, data_dir: DataDirOption = None) -> None:
    """List datasets and whether they are ready to use (files present, cached)."""
    if ctx.invoked_subcommand is not None:
        return
    registry = _registry()
    table = Table(title="snnkit datasets")
    table.add_column("name", no_wrap=True)
    for col in ("source", "classes", "inputs", "duration (ms)", "status", "summary"):
        table.add_column(col)
    for name, entry in registry.entries["dataset"].items():
        spec = entry.obj
        if getattr(spec, "status", None) is not None:
            text = spec.status(data_dir)
            status = Text(text, style="green" if text.startswith("present") else "yellow")
        else:
            ready = spec.available()
            status = Text("ready" if ready else "missing", style="green" if ready else "yellow")
        table.add_row(
            Text(name),
            Text(spec.source),
            str(len(spec.classes)),
            str(spec.num_inputs),
            f"{spec.duration:g}",
            status,
            Text(spec.summary),
        )
    console.print(table)


@datasets_app.command("download")
@user_errors
def datasets_download(
    name: Annotated[str, typer.Argument(help="Dataset to fetch (see `snnkit datasets`).")],
    data_dir: DataDirOption = None,
) -> None:
    """Fetch a dataset's files into --data-dir (the only way snnkit downloads anything)."""
    spec = _registry().dataset(name)
    if getattr(spec, "download", None) is None:
        raise SnnkitError(f"dataset '{name}' is generated locally; there is nothing to download")
    spec.download(data_dir)
    console.print(Text(f"{name}: {spec.status(data_dir)}"))


leaderboard_app = typer.Typer(
    help="Rank recorded runs per task (mean ± std over seeds); `run` trains what is missing.",
    add_completion=False,
    no_args_is_help=True,
)
app.add_typer(leaderboard_app, name="leaderboard")
DbOption = Annotated[Path, typer.Option(help="Results database (SQLite).")]
GradsOption = Annotated[
    list[str] | None, typer.Option("--grad", help="Only these methods (repeatable).")
]
TaskOption = Annotated[str | None, typer.Option("--dataset", help="Only this task.")]
MinSeedsOption = Annotated[
    int,
    typer.Option("--min-seeds", "--min-runs", help="Hide entries with fewer seeds."),
]


def _board(db: Path, dataset: str | None, grad: list[str] | None, min_seeds: int):
    """The entries to show, and the store's unfinished runs (running or stale) among them;
    an empty board is an error (exit 2), for `show` as for `export`."""
    from snnkit.leaderboard import entries
    from snnkit.results import ResultsStore

    if not db.exists():
        raise SnnkitError(
            f"no results database at {db}; train with `snnkit run` or `snnkit leaderboard run`, "
            "or pass --db"
        )
    with ResultsStore(db) as store:
        board = entries(store, dataset=dataset, methods=grad, min_seeds=min_seeds)
        everything = store.runs(status=None)
    if dataset is not None and all(r.dataset != dataset for r in everything):
        known = ", ".join(sorted({r.dataset for r in everything})) or "none"
        raise SnnkitError(f"no runs of dataset {dataset!r} in {db}; it holds: {known}")
    if grad and not {r.method for r in everything} & set(grad):
        known = ", ".join(sorted({r.method for r in everything})) or "none"
        raise SnnkitError(f"no runs of --grad {', '.join(grad)} in {db}; it holds: {known}")
    if not board:
        raise SnnkitError(
            f"no completed runs in {db} match (need {min_seeds} seed(s) per entry); train "
            "some with `snnkit run` or `snnkit leaderboard run`"
        )
    unfinished = [
        r
        for r in everything
        if r.status == "running"
        and (dataset is None or r.dataset == dataset)
        and (not grad or r.method in grad)
    ]
    return board, unfinished


def _print_board(board, unfinished, db: Path) -> None:
    from snnkit.leaderboard import HEADERS, cells

    table = Table(title=Text(f"snnkit leaderboard · {db}"))
    for header in HEADERS:
        table.add_column(header, justify="right" if header in ("#", "s / epoch") else "left")
    for entry in board:
        table.add_row(*(Text(c) for c in cells(entry)))
    console.print(table)
    states = Counter(r.state for r in unfinished)
    if states["running"]:
        console.print(f"{states['running']} run(s) still training (not ranked yet)")
    stale = [r.id for r in unfinished if r.state == "stale"]
    if stale:
        console.print(
            Text(
                f"{len(stale)} run(s) whose process died (stale, not ranked): "
                f"{', '.join(map(str, stale))}; continue one with "
                f"`snnkit run --resume --run-id ID --db {db}`"
            )
        )


@leaderboard_app.command("show")
@user_errors
def leaderboard_show(
    db: DbOption = Path("snnkit-results.db"),
    dataset: TaskOption = None,
    grad: GradsOption = None,
    min_seeds: MinSeedsOption = 1,
) -> None:
    """The leaderboard as a table: one entry per task, method, neuron and setting."""
    _print_board(*_board(db, dataset, grad, min_seeds), db)


@leaderboard_app.command("export")
@user_errors
def leaderboard_export(
    out: Annotated[Path, typer.Argument(help="File to write (.md, .csv, .html, .json, .png).")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="markdown, csv, html, json or png (default: from OUT)."),
    ] = None,
    db: DbOption = Path("snnkit-results.db"),
    dataset: TaskOption = None,
    grad: GradsOption = None,
    min_seeds: MinSeedsOption = 1,
    conformance: ConformanceOption = None,
) -> None:
    """Write the leaderboard as Markdown, CSV, HTML, JSON or a PNG plot (per task: accuracy
    against time per epoch and learning curves)."""
    from snnkit.leaderboard import check_format, write

    check_format(out, fmt)
    writable_file(out, "leaderboard export")
    errors = _conformance_file(conformance)
    board, _ = _board(db, dataset, grad, min_seeds)
    for entry in board if errors is not None else []:
        entry.conformance = errors.get(entry.method, "not checked")
    written = write(board, out, fmt)
    console.print(Text(f"wrote {out} ({written}, {len(board)} entries)"))


ConformanceOption = Annotated[
    Path | None,
    typer.Option(
        "--conformance",
        help="A `snnkit conformance --json` file: each method's gradient error on the board.",
    ),
]


def _conformance_file(path: Path | None) -> dict[str, str] | None:
    """Per method, its gradient error from a ``snnkit conformance --json`` file (None: no file)."""
    from snnkit.leaderboard import conformance_errors

    if path is None:
        return None
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise SnnkitError(
            f"--conformance {path}: no such file; write one with `snnkit conformance --json {path}`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnnkitError(
            f"--conformance {path}: not a `snnkit conformance --json` file ({exc})"
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise SnnkitError(
            f"--conformance {path}: not a `snnkit conformance --json` file (no results list)"
        )
    return conformance_errors(payload)


@leaderboard_app.command("report")
@user_errors
def leaderboard_report(
    out: Annotated[Path, typer.Argument(help="HTML file to write (self-contained).")],
    db: DbOption = Path("snnkit-results.db"),
    dataset: TaskOption = None,
    grad: GradsOption = None,
    min_seeds: MinSeedsOption = 1,
    conformance: ConformanceOption = None,
) -> None:
    """One self-contained HTML page: per task the ranked table (accuracy, time, memory,
    gradient error, spike activity, settings against the task's recipe), accuracy against
    time per epoch with the Pareto front, and learning curves over seeds."""
    from snnkit.paths import writable_file
    from snnkit.report import annotate, html_report

    if out.suffix.lower() not in (".html", ".htm"):
        raise SnnkitError(f"{out}: the report is an HTML page; name it *.html")
    writable_file(out, "leaderboard report")
    errors = _conformance_file(conformance)
    board, unfinished = _board(db, dataset, grad, min_seeds)
    registry = _registry()

    def recipe_of(task):
        try:
            return dict(registry.dataset(task).defaults or {})
        except SnnkitError:
            return None

    def is_events(method):
        try:
            return registry.gradient(method).representation == "events"
        except SnnkitError:
            return False

    annotate(board, recipe_of, is_events, errors)
    recipes = {
        t: ", ".join(f"{k}={v}" for k, v in (recipe_of(t) or {}).items() if k != "events")
        for t in {e.dataset for e in board}
    }
    notes = [f"{len(unfinished)} run(s) still training or stale, not ranked"] if unfinished else []
    if errors is None:
        notes.append("gradient errors: not checked (pass --conformance FILE)")
    page = html_report(board, title=f"snnkit leaderboard · {db.name}", recipes=recipes, notes=notes)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page)
    tmp.replace(out)
    console.print(
        Text(f"wrote {out} ({len(board)} entries, {len({e.dataset for e in board})} task(s))")
    )


@leaderboard_app.command("run")
@user_errors
def leaderboard_run(
    ctx: typer.Context,
    grad: Annotated[list[str], typer.Option("--grad", help="Methods to rank (repeatable).")],
    dataset: Annotated[str, typer.Option(help="Task.")] = "yinyang",
    neuron: Annotated[str, typer.Option(help="Neuron model.")] = "lif",
    seeds: Annotated[int, typer.Option(help="Seeds 0 .. N-1 per method.")] = 3,
    only_seed: Annotated[
        list[int] | None,
        typer.Option("--seed", help="Only this seed (repeatable; instead of --seeds)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[
        str | None, typer.Option(help="float32 or float64 (default: the recipe's, else float32).")
    ] = None,
    data_dir: DataDirOption = None,
    data_opt: Annotated[
        list[str] | None, typer.Option("--data-opt", help="Dataset option KEY=VALUE (repeatable).")
    ] = None,
    db: DbOption = Path("snnkit-results.db"),
    out: Annotated[
        Path,
        typer.Option(help="Checkpoint root (with --executor ray: storage every node sees)."),
    ] = Path("runs/leaderboard"),
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    threads: ThreadsOption = None,
    executor: Annotated[
        str, typer.Option(help="local (this machine) or ray (each run a Ray task).")
    ] = "local",
    jobs: Annotated[
        int, typer.Option(help="Local runs at once, each in its own process (CPUs shared out).")
    ] = 1,
    address: Annotated[
        str | None,
        typer.Option(
            help="With --executor ray: the cluster, auto or HOST:PORT (default: a new local one)."
        ),
    ] = None,
    cpus_per_task: Annotated[
        float, typer.Option(help="With --executor ray: CPUs reserved per run.")
    ] = 1.0,
    gpus_per_task: Annotated[
        float, typer.Option(help="With --executor ray: GPUs reserved per run (use --device cuda).")
    ] = 0.0,
) -> None:
    """Train every (method, seed) the database lacks for these settings (resuming interrupted
    ones), then show the task's leaderboard. Rerun it after an interruption: nothing is lost.
    With --jobs N or --executor ray the runs train in other processes and this one alone
    writes --db (docs/distributed.md)."""
    from snnkit.leaderboard import fill
    from snnkit.threads import use_threads
    from snnkit.train import RunConfig

    use_threads(threads)
    if not 1 <= seeds <= 1000:
        raise SnnkitError(f"--seeds must be between 1 and 1000, got {seeds}")
    if only_seed and _on_command_line(ctx, "seeds"):
        raise SnnkitError("--seed S trains seed S only and --seeds N seeds 0 .. N-1: give one")
    bad = [s for s in only_seed or [] if not 0 <= s < 2**31]
    if bad:
        raise SnnkitError(f"--seed must be between 0 and 2**31 - 1, got {bad[0]}")
    writable_dir(out, "--out")
    writable_file(db, "--db")
    options = _config_options(ctx)  # the grid's shared settings, with --grad's list
    configs = [
        RunConfig(**{**options, "grad": method, "seed": seed})
        for method in grad
        for seed in (sorted(set(only_seed)) if only_seed else range(seeds))
    ]
    done = fill(
        configs,
        db=db,
        out=out,
        registry=_registry(),
        progress=progress,
        console=console,
        executor=executor,
        jobs=jobs,
        address=address,
        cpus_per_task=cpus_per_task,
        gpus_per_task=gpus_per_task,
    )
    counts = Counter(status for _, status in done)
    console.print(
        f"{counts['trained']} trained, {counts['resumed']} resumed, "
        f"{counts['recorded']} already recorded",
        highlight=False,
    )
    _print_board(*_board(db, dataset, grad, 1), db)


@app.command()
@user_errors
def conformance(
    grad: Annotated[
        list[str] | None, typer.Option(help="Method(s) to check (repeatable; default: all).")
    ] = None,
    dtype: Annotated[
        list[str] | None, typer.Option(help="float64 and/or float32 (repeatable; default float64).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    neuron: Annotated[
        str | None,
        typer.Option(help="Neuron under test (default: LIF); raster cases run with it."),
    ] = None,
    neuron_opt: Annotated[
        list[str] | None,
        typer.Option("--neuron-opt", "-n", help="Its parameter KEY=VALUE (repeatable)."),
    ] = None,
    surrogate: Annotated[
        str | None,
        typer.Option(
            help="Surrogate under test (default: exponential); its C++/CUDA body is checked "
            "against its torch form first."
        ),
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
) -> None:
    """Check each method's gradients against its oracle; exit 1 if any case fails, or (without
    --grad) if an installed method could not be checked: its plugin failed to load, or its
    name clashes. A method that does not simulate --neuron is reported, not failed."""
    from rich.progress import Progress

    from snnkit.conformance import exact_event_methods, iter_cases, plan, subject, unsupported
    from snnkit.train import check_device

    registry = _registry()
    methods = [registry.gradient(name) for name in (grad or registry.available("gradient"))]
    unchecked = [] if grad else _unchecked(registry)
    peers = exact_event_methods(registry)
    dtypes = dtype or ["float64"]
    for d in dtypes:
        if d not in ("float64", "float32"):
            raise SnnkitError(f"--dtype must be float64 or float32, got {d!r}")
    check_device(device)
    spec, chosen = subject(
        registry, neuron, surrogate, **_parse_options(neuron_opt, "--neuron-opt")
    )
    if json_file is not None:
        writable_file(json_file, "--json")
    body = _check_surrogate_body(chosen, json_file)
    refused = {m.name: unsupported(m, spec, chosen) for m in methods}
    methods = [m for m in methods if refused[m.name] is None]
    refused = {name: why for name, why in refused.items() if why is not None}
    results = []
    total = sum(len(plan(m, dtypes, peers)) for m in methods)
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("conformance", total=total)
        for method in methods:
            for result in iter_cases(method, dtypes, device, peers, neuron=spec, surrogate=chosen):
                results.append(result)
                bar.update(task, advance=1, description=f"{method.name} {result.name}")
    if spec is not None or chosen is not None:
        under_test = [x.describe() for x in (spec, chosen) if x is not None]
        console.print(Text(f"under test: {', '.join(under_test)}"), soft_wrap=True)
    if body is not None:
        console.print(Text(body.summary()), soft_wrap=True)
    for method in methods:
        console.print(_conformance_table(method, [r for r in results if r.method == method.name]))
    for name, why in refused.items():
        console.print(Text.assemble(("unsupported", "yellow"), f" {name}: {why}"), soft_wrap=True)
    for r in results:
        if r.status != "passed":  # why a case was skipped, failed or crashed, in full
            line = Text(r.status, style=STATUS_STYLES[r.status])
            console.print(
                line.append(f" {r.method} / {r.name} / {r.dtype}: {r.detail}"), soft_wrap=True
            )
    failed = [r for r in results if r.counts_as_failure]
    passed = not failed and not unchecked
    if json_file is not None:
        payload = {
            "passed": passed,
            "results": [r.to_json() for r in results],
            "unchecked": unchecked,
            "unsupported": refused,
            "surrogate_body": body.to_json() if body is not None else None,
        }
        json_file.write_text(json.dumps(payload, indent=2))
    counts = {
        s: sum(r.status == s for r in results) for s in ("passed", "failed", "error", "skipped")
    }
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()))
    for reason in unchecked:
        console.print(Text.assemble(("not checked", "bold red"), f" {reason}"), soft_wrap=True)
    if not passed:
        raise typer.Exit(1)


def _check_surrogate_body(surrogate, json_file: Path | None):
    """The surrogate's body check (None without a surrogate under test); a failure ends the
    command before any gradient case: one line, exit 1, and the JSON says so."""
    if surrogate is None:
        return None
    from snnkit.conformance.surrogate_body import check_body

    with err_console.status(f"checking the C++/CUDA body of {surrogate.describe()}"):
        body = check_body(surrogate)
    if not body.passed:
        if json_file is not None:
            payload = {"passed": False, "results": [], "surrogate_body": body.to_json()}
            json_file.write_text(json.dumps(payload, indent=2))
        raise JobFailed(body.summary())
    return body


STATUS_STYLES = {"passed": "green", "failed": "bold red", "error": "bold red", "skipped": "yellow"}


def _unchecked(registry) -> list[str]:
    """Why not every installed method can be checked: failed plugins, clashing names."""
    out = [
        f"plugin '{p.name}' ({p.distribution} {p.version}) failed to load, so its methods "
        f"are unknown: {p.error}"
        for p in registry.failures
    ]
    for (kind, name), entries in registry.clashes.items():
        if kind == "gradient":
            dists = " and ".join(e.plugin.distribution for e in entries)
            out.append(f"gradient '{name}' is registered by both {dists}")
    return out


def _conformance_table(method, results) -> Table:
    """One method's cases; the columns fit 120 characters without cutting a value."""
    kind = "exact" if method.exact else f"approximate: {method.approximation}"
    title = Text(f"{method.name} · oracle {method.oracle} · {kind}")
    table = Table(title=title, title_justify="left")
    table.add_column("case", overflow="fold")
    table.add_column("dtype", no_wrap=True)
    for col in ("max rel err", "cosine", "tolerance"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for r in results:
        err = f"{r.max_rel_err:.1e}" if r.max_rel_err == r.max_rel_err else "—"
        cos = f"{r.cosine:.9f}" if r.cosine == r.cosine else "—"
        status = Text(r.status, style=STATUS_STYLES[r.status])
        table.add_row(Text(r.name), r.dtype, err, cos, f"{r.tolerance:.0e}", status)
    return table


@app.command()
@user_errors
def bench(
    grad: Annotated[
        list[str] | None,
        typer.Option(help="Method(s) to time (repeatable); bptt is always the baseline."),
    ] = None,
    size: Annotated[
        list[str] | None,
        typer.Option(help="T,B,N to time (repeatable); default the three standard sizes."),
    ] = None,
    part: Annotated[
        list[str] | None, typer.Option(help="neuron and/or linear+lif (default both).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    dtype: Annotated[str, typer.Option(help="float32 or float64.")] = "float32",
    repeats: Annotated[int, typer.Option(help="Timed repeats (median reported).")] = 5,
    timeout: Annotated[
        float | None, typer.Option(help="Skip a (method, size) expected to take longer (s).")
    ] = 120.0,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
    conv: Annotated[
        bool,
        typer.Option(
            "--conv",
            help="The convolutional case instead: the DVS Gesture recipe's conv SNN "
            "(T=300, B=8) against BPTT and the peers, neuron cost beside (--size/--part unused).",
        ),
    ] = False,
) -> None:
    """Time forward+backward and saved memory of methods against BPTT, in one run."""
    from snnkit.bench import (
        DEFAULT_SIZES,
        PARTS,
        PEERS,
        BenchConfig,
        method_options,
        results_table,
        run_bench,
        to_json,
    )
    from snnkit.train import DTYPES, check_device

    registry = _registry()
    methods = grad or [
        m for m in registry.available("gradient") if registry.gradient(m).representation == "raster"
    ]
    for name in methods:
        base = method_options(name)[0]  # NAME:KEY=VALUE,...
        if base not in PEERS:  # a peer not installed is a skipped measurement
            registry.gradient(base)  # unknown names: one clear line
    if dtype not in DTYPES:
        raise SnnkitError(f"--dtype must be float32 or float64, got {dtype!r}")
    check_device(device)
    if repeats < 1:
        raise SnnkitError(f"--repeats must be >= 1, got {repeats}")
    if timeout is not None and not timeout > 0:  # NaN fails too
        raise SnnkitError(f"--timeout must be a positive number of seconds, got {timeout}")
    sizes = []
    for text in size or []:
        try:
            t, b, n = (int(x) for x in text.split(","))
        except ValueError:
            t = b = n = 0
        if min(t, b, n) < 1:
            raise SnnkitError(
                f"--size {text!r} is not T,B,N (three positive integers), e.g. 100,32,256"
            )
        sizes.append((t, b, n))
    parts = part or list(PARTS)
    configs = [BenchConfig(t, b, n, p) for t, b, n in (sizes or DEFAULT_SIZES) for p in parts]
    if json_file is not None:
        writable_file(json_file, "--json")
    if conv:
        return _bench_conv(methods, device, DTYPES[dtype], repeats, json_file)
    with err_console.status("benchmarking") as status:
        results = run_bench(
            methods,
            configs,
            device=device,
            dtype=DTYPES[dtype],
            repeats=repeats,
            timeout_s=timeout,
            progress=lambda text: status.update(text),
        )
    console.print(results_table(results))
    if json_file is not None:
        json_file.write_text(json.dumps(to_json(results), indent=2))


@app.command("export")
@user_errors
def export_nir(
    source: Annotated[
        str, typer.Argument(help="A run id of --db, a run folder, or a checkpoint file.")
    ],
    output: Annotated[Path, typer.Argument(help="The NIR file to write (e.g. model.nir).")],
    scheme: Annotated[
        str,
        typer.Option(
            help="The reader's discretisation: exact (snnkit's exponential decay) or euler "
            "(snntorch, norse); see docs/nir.md."
        ),
    ] = "exact",
    time_step: Annotated[
        float | None,
        typer.Option(help="One step in the graph's time unit (default: the run's dt)."),
    ] = None,
    db: Annotated[Path, typer.Option(help="Results database a run id refers to.")] = Path(
        "snnkit-results.db"
    ),
) -> None:
    """Write a trained raster network as a NIR graph (needs the extra 'nir')."""
    from snnkit import nir as snnkit_nir
    from snnkit.train import CHECKPOINT, trained_model

    nir = snnkit_nir.require_nir()
    snnkit_nir.check_discretisation(scheme, time_step)
    writable_file(output, "OUTPUT")
    checkpoint = _checkpoint_of(source, db, CHECKPOINT)
    _registry()
    graph = snnkit_nir.export(trained_model(checkpoint), scheme=scheme, time_step=time_step)
    tmp = output.with_name(output.name + ".tmp")
    nir.write(tmp, graph)
    tmp.replace(output)
    step = graph.metadata["snnkit.time_step"]
    console.print(
        Text(f"wrote {output}: {len(graph.nodes)} nodes, scheme {scheme}, time step {step:g}")
    )


def _checkpoint_of(source: str, db: Path, name: str) -> Path:
    """The checkpoint file a run id (of ``db``), run folder or file names."""
    from snnkit.results import ResultsStore

    if source.isdigit() and not Path(source).exists():
        if not db.exists():
            raise SnnkitError(f"run {source}: no results database at {db}; pass --db")
        with ResultsStore(db) as store:
            record = store.get(int(source))
        if not record.checkpoint:
            raise SnnkitError(f"run {source} has no recorded checkpoint; pass its file instead")
        path = Path(record.checkpoint)
    else:
        path = Path(source)
        path = path / name if path.is_dir() else path
    if not path.is_file():
        raise SnnkitError(f"no checkpoint {path}: give a run id, a run folder or a checkpoint file")
    return path


def _bench_conv(methods, device, dtype, repeats, json_file) -> None:
    from snnkit import bench_conv
    from snnkit.bench import machine_info

    with err_console.status("benchmarking the conv SNN") as status:
        results = bench_conv.run_conv(
            methods, device=device, dtype=dtype, repeats=repeats, progress=status.update
        )
    console.print(bench_conv.conv_table(results))
    if json_file is not None:
        data = bench_conv.to_json(results, {"machine": machine_info(device)})
        json_file.write_text(json.dumps(data, indent=2))


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())


if __name__ == "__main__":
    main()
