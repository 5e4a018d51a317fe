"""The command line under bad input: every option that takes a value, given nonsense, a
negative, zero, NaN, the wrong type or an unwritable path, through the real CLI.

Each case must end with exit code 2, exactly one line on stderr (``error: ...``), nothing
on stdout, no traceback, and nothing written: the working folder (where the results
store, checkpoints and outputs would go) is byte-for-byte what the case set up.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fixtures.processes import run_cli
from rich.console import Console
from typer.testing import CliRunner

import snnkit.cli as cli
from snnkit.results import ResultsStore

# a valid tiny run (it trains in about a second), so a case the CLI wrongly accepts fails
# the test by exit code 0 instead of hanging it
RUN = ["run", "--epochs", "1", "--data-opt", "size=8", "--hidden", "4", "--no-progress",
       "--db", "r.db", "--out", "ck"]  # fmt: skip
UNWRITABLE = "/proc/snnkit-fuzz"  # takes no files, not even as root


def values(option: str, *bad: str, base=RUN, words=None) -> list:
    """One case per bad value of ``option`` (its line must name the option or the value)."""
    return [pytest.param([*base, option, v], words, id=f"{base[0]} {option} {v}") for v in bad]


def case(*args: str, words=None, base=RUN) -> list:
    return [pytest.param([*base, *args], words, id=" ".join([base[0], *args])[:70])]


NUMBER = ("abc", "-1", "0", "nan", "inf", "")
INTEGER = ("abc", "-1", "0", "1.5", "nan", "")

CASES = [
    # snnkit run: names of things
    *values("--neuron", "nope", ""),
    *values("--grad", "nope", ""),
    *values("--dataset", "nope", ""),
    *values("--surrogate", "nope", ""),
    *values("--loss", "nope", "ttfs_ce"),
    *values("--readout", "bogus", ""),
    *values("--dtype", "float16", "abc", ""),
    *values("--device", "tpu", "cpu:0", "cuda:x", ""),
    *values("--hidden", "abc", "0", "-5", "10-0", "nan", "", words="shape"),
    *values(
        "--arch",
        "abc",
        "",
        "4-2",
        "0-3",
        "4c0-3",
        "d1.5-3",
        "bn-3",
        "3r",
        "4-a2-3",
        "16c9-3",
        "no/such.toml",
        base=[a for a in RUN if a not in ("--hidden", "4")],
    ),  # fmt: skip
    *case("--arch", "8-3", words="--hidden"),
    *values("--schedule", "bogus", "step:x:y", "step:0:5", "step:0.5:0", "step:2:1", ""),
    # snnkit run: numbers
    *values("--epochs", *INTEGER),
    *values("--batch-size", *INTEGER, "99999999999"),
    *values("--seed", "abc", "-1", "1.5", "99999999999999999999"),
    *values("--threads", *INTEGER, "100000"),
    *values("--lr", *NUMBER),
    *values("--lr-threshold", *NUMBER),
    *values("--clip-grad", *NUMBER),
    *values("--dt", *NUMBER),
    *values("--init-rate", "abc", "-1", "nan", "inf"),  # 0 is valid: off
    # snnkit run: KEY=VALUE options
    *values(
        "-n",
        "nonsense",
        "=1",
        "bogus=1",
        "tau_mem=-1",
        "tau_mem=0",
        "tau_mem=nan",
        "tau_mem=inf",
        "tau_mem=abc",
        "threshold=0",
        "reset=bogus",
    ),  # fmt: skip
    *values("--layer-opt", "nonsense", "bogus=1"),
    # a switch takes true or false, not any truthy value
    *values(
        "--layer-opt",
        "train_threshold=maybe",
        "train_tau=1",
        "bias=yes",
        "recurrent=null",
        words="true or false",
    ),
    *values(
        "--data-opt", "nonsense", "bogus=1", "size=0", "size=-1", "size=nan", "size=1.5", "size=abc"
    ),  # fmt: skip
    *case("--dataset", "shd", "--data-dir", "no/such/data", words="shd"),
    # snnkit run: output paths and resumption
    *values("--db", f"{UNWRITABLE}.db", "no/such/dir/r.db", "a-dir", words="--db"),
    *values("--out", UNWRITABLE, "a-file", "a-file/ck", words="--out"),
    *values("--json", f"{UNWRITABLE}.json", "no/such/dir/o.json", "a-dir", words="--json"),
    *values("--run-id", "5", "abc", words="--run-id"),
    *values("--nproc", "0", "-1", "abc", "2000", words="--nproc"),
    *case("--resume", words="nothing to resume", base=["run", "--db", "empty.db"]),
    *case("--resume", words="nothing to resume", base=["run", "--db", "none.db"]),
    *case(
        "--resume", "--run-id", "99", words="no run with id 99", base=["run", "--db", "empty.db"]
    ),
    *case("--resume", "--out", "no-checkpoint-here", words="no checkpoint"),
    *case("--no-such-option", words="--no-such-option"),
    *case("extra-argument", words="extra-argument"),
    # snnkit leaderboard show / export / run
    *values(
        "--db", "none.db", UNWRITABLE, base=["leaderboard", "show"], words="no results database"
    ),
    *values("--min-seeds", "0", "-1", "abc", base=["leaderboard", "show", "--db", "one.db"]),
    *values(
        "--dataset", "nosuch", "", base=["leaderboard", "show", "--db", "one.db"], words="it holds"
    ),
    *values("--grad", "nosuch", base=["leaderboard", "show", "--db", "one.db"], words="it holds"),
    *case(base=["leaderboard", "show", "--db", "empty.db"], words="no completed runs"),
    *case(base=["leaderboard", "export", "b.md", "--db", "empty.db"], words="no completed runs"),
    *case(
        "b.md",
        "--format",
        "bogus",
        base=["leaderboard", "export", "--db", "one.db"],
        words="--format",
    ),
    *case("b.bogus", base=["leaderboard", "export", "--db", "one.db"], words="b.bogus"),
    *case(f"{UNWRITABLE}.md", base=["leaderboard", "export", "--db", "one.db"], words=UNWRITABLE),
    *case("a-dir", base=["leaderboard", "export", "--db", "one.db"], words="a-dir"),
    *case(base=["leaderboard", "export"], words="'out'"),
    *values(
        "--conformance",
        "nosuch.json",
        "a-file",
        "a-dir",
        base=["leaderboard", "export", "b.md", "--db", "one.db"],
        words="--conformance",
    ),  # fmt: skip
    *case("b.md", base=["leaderboard", "report", "--db", "one.db"], words="HTML page"),
    *case("b.html", base=["leaderboard", "report", "--db", "empty.db"], words="no completed runs"),
    *case(f"{UNWRITABLE}.html", base=["leaderboard", "report", "--db", "one.db"], words=UNWRITABLE),
    *values(
        "--conformance",
        "nosuch.json",
        "a-file",
        base=["leaderboard", "report", "b.html", "--db", "one.db"],
        words="--conformance",
    ),  # fmt: skip
    *case(base=["leaderboard", "run"], words="--grad"),
    *values("--grad", "nope", base=["leaderboard", "run", "--db", "r.db", "--out", "ck"]),
    *values(
        "--seeds",
        "0",
        "-1",
        "abc",
        "100000",
        base=["leaderboard", "run", "--grad", "bptt", "--db", "r.db", "--out", "ck"],
    ),  # fmt: skip
    *[
        p
        for option, bad in (
            ("--epochs", ("0", "-1", "abc")),
            ("--device", ("tpu", "")),
            ("--dtype", ("float16",)),
            ("--dataset", ("nope",)),
            ("--neuron", ("nope",)),
            ("--threads", ("0", "abc")),
            ("--out", (UNWRITABLE, "a-file")),
            ("--db", (f"{UNWRITABLE}.db", "a-dir")),
            ("--executor", ("slurm", "")),
            ("--jobs", ("0", "-1", "abc", "1000")),
            ("--address", ("auto",)),  # without --executor ray
            ("--cpus-per-task", ("-1", "nan", "abc")),
            ("--gpus-per-task", ("-1", "inf")),
            ("--data-opt", ("size", "size=0")),
        )
        for p in values(
            option,
            *bad,
            base=["leaderboard", "run", "--grad", "bptt", "--db", "r.db", "--out", "ck"],
        )
    ],
    # snnkit conformance and bench
    *values("--grad", "nope", base=["conformance"]),
    *values("--dtype", "float16", "", base=["conformance", "--grad", "bptt"]),
    *values("--device", "bogus", "tpu", "cuda:x", base=["conformance", "--grad", "bptt"]),
    *values(
        "--json",
        f"{UNWRITABLE}.json",
        "no/such/o.json",
        "a-dir",
        base=["conformance", "--grad", "bptt"],
    ),  # fmt: skip
    *values("--neuron", "nope", "", "li", base=["conformance", "--grad", "bptt"]),
    *values("--surrogate", "nope", "", base=["conformance", "--grad", "bptt"]),
    *values(
        "--neuron-opt",
        "abc",
        "tau_mem=-1",
        "nosuch=1",
        base=["conformance", "--grad", "bptt", "--neuron", "alif"],
    ),
    *case("-n", "tau_mem=5", base=["conformance", "--grad", "bptt"]),
    *values("--grad", "nope", base=["bench"]),
    *values("--size", "10,2", "0,1,1", "a,b,c", "-1,2,3", "", base=["bench", "--grad", "bptt"]),
    *values("--part", "bogus", base=["bench", "--grad", "bptt", "--size", "2,1,1"], words="bogus"),
    *values("--device", "bogus", "cuda:x", base=["bench", "--grad", "bptt"]),
    *values("--dtype", "float16", base=["bench", "--grad", "bptt"]),
    *values("--repeats", "0", "-1", "abc", base=["bench", "--grad", "bptt"]),
    *values("--timeout", "0", "-1", "nan", "abc", base=["bench", "--grad", "bptt"]),
    *values("--json", f"{UNWRITABLE}.json", "a-dir", base=["bench", "--grad", "bptt"]),
    # snnkit export (needs the extra 'nir'; without it every case is the one line naming it)
    *values("--scheme", "bogus", "", base=["export", "a-dir", "m.nir"]),
    *values("--time-step", *NUMBER, base=["export", "a-dir", "m.nir"]),
    *case(f"{UNWRITABLE}.nir", base=["export", "a-dir"], words=UNWRITABLE),
    *case("a-dir", "m.nir", base=["export"], words="no checkpoint"),
    *case("nosuch", "m.nir", base=["export"], words="no checkpoint"),
    *case("a-file", "m.nir", base=["export"], words="a-file"),
    *case("1", "m.nir", "--db", "one.db", base=["export"], words="no recorded checkpoint"),
    *case("7", "m.nir", "--db", "none.db", base=["export"], words="no results database"),
    *case(base=["export"], words="'source'"),
    # snnkit datasets
    *case("nope", base=["datasets", "download"], words="nope"),
    *case("yinyang", base=["datasets", "download"], words="nothing to download"),
    *case(base=["datasets", "download"], words="'name'"),
]

if torch.cuda.is_available():  # without a GPU, --device cuda is a mistake as well
    CASES = [c for c in CASES if "cuda:x" not in c.values[0]]
else:
    CASES += values("--device", "cuda", "cuda:0")
    CASES += values("--device", "cuda", base=["conformance", "--grad", "bptt"])


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def _setup(folder: Path) -> None:
    """What some cases point at: a file, a folder, an empty store and one with a run."""
    (folder / "a-file").write_text("not a folder\n")
    (folder / "a-dir").mkdir()
    ResultsStore(folder / "empty.db").close()
    with ResultsStore(folder / "one.db") as store:
        run_id = store.start_run(
            method="bptt", neuron="lif", dataset="yinyang", seed=0, config={"epochs": 1},
            versions={}, device="cpu",
        )  # fmt: skip
        store.finish_run(run_id, test_accuracy=0.5)


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders). SQLite's ``-wal`` and
    ``-shm`` side files come and go with connections; the stores' rows are compared."""
    out: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if name.endswith(("-wal", "-shm")):
            continue
        if path.suffix == ".db":
            with ResultsStore(path) as store:
                out[name] = repr([(r.id, r.status) for r in store.runs(status=None)]).encode()
        else:
            out[name] = None if path.is_dir() else path.read_bytes()
    return out


def _names(args: list[str], words: str | None) -> list[str]:
    """What the error line must mention: ``words``, else the option (``--lr`` or ``lr``), its
    value, or for ``KEY=VALUE`` the key."""
    if words:
        return [words]
    flag = next(a for a in reversed(args) if a.startswith("-"))
    value = args[-1]
    names = [flag, value.partition("=")[0]] + ([flag.lstrip("-")] if flag.startswith("--") else [])
    return [n for n in names if n]


@pytest.mark.parametrize(("args", "words"), CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    runner, tmp_path, monkeypatch, args, words
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SNNKIT_DATA", raising=False)
    monkeypatch.setattr(cli, "console", Console(width=250))
    monkeypatch.setattr(cli, "err_console", Console(stderr=True, width=250))
    _setup(tmp_path)
    before = _snapshot(tmp_path)
    threads = torch.get_num_threads()
    try:
        result = runner.invoke(cli.app, args)
    finally:
        torch.set_num_threads(threads)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"crashed: {result.exception!r}\n{result.output}"
    assert result.exit_code == 2, result.output
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert any(w in lines[0] for w in _names(args, words)), (args, lines[0])
    assert _snapshot(tmp_path) == before


def test_the_table_covers_every_option_that_takes_a_value():
    """A new option of `snnkit run` must get fuzz cases too."""
    import typer.main

    run = typer.main.get_command(cli.app).commands["run"]
    fuzzed = {a for c in CASES if c.values[0][0] == "run" for a in c.values[0][len(RUN) :]}
    fuzzed |= {a for c in CASES if c.values[0][0] == "run" for a in c.values[0]} - set(RUN)
    missing = [p.opts for p in run.params if not p.is_flag and not set(p.opts) & fuzzed]
    assert missing == [], missing
    assert len(CASES) >= 150


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--epochs", "abc"],
        ["run", "--schedule", "step:x:y"],
        ["run", "--json", f"{UNWRITABLE}.json", "--epochs", "1", "--data-opt", "size=8"],
        ["conformance", "--device", "bogus"],
        ["leaderboard", "export", f"{UNWRITABLE}.md"],
    ],
    ids=lambda a: " ".join(a)[:40],
)
def test_bad_input_in_a_real_process(tmp_path, args):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in proc.stderr
    assert "❌" not in line  # user text is never read as an emoji code (':x:')
    assert list(tmp_path.iterdir()) == []


def test_out_of_memory_is_one_line_and_exit_1(runner, tmp_path, monkeypatch):
    """Not a mistake in the options but a job that cannot be done here: exit 1, one line,
    nothing recorded (the network is built before the run is)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "err_console", Console(stderr=True, width=250))
    result = runner.invoke(cli.app, [*RUN, "--hidden", "99999999999"])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("failed: out of memory")
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "ck").exists()
