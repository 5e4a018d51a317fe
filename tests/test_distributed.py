"""DDP with real gloo processes started by torchrun (and by `snnkit run --nproc`).

1. Exactness: for every bundled method, in float64, the gradient DDP averages over two
   ranks after one step equals the single-process gradient of the same global batch to
   1e-12 relative (an uneven batch of 15: shares of 8 and 7). The same check rejects a
   DDP whose all-reduce sums instead of averaging.
2. Two epochs under ``torchrun --nproc-per-node 2`` train what one process trains with
   the same global batch and seed: per-epoch losses to 1e-9 relative, the same accuracies;
   rank 0 alone writes the store, the checkpoint and the JSON; ``--resume`` continues a
   DDP run exactly.
3. Failures end the job: a killed rank stops `snnkit run --nproc 2` with one line; a
   rank whose peer is gone stops at the collective's timeout instead of hanging.
4. Two "nodes" (two torchrun launchers) meet at one c10d rendezvous endpoint.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from fixtures.ddp_cases import METHODS, config_for, global_batch
from fixtures.processes import cli_env

from snnkit.distributed import SINGLE, World, shard, world_from_env
from snnkit.results import ResultsStore
from snnkit.train import RunConfig, Trainer, run

TESTS = Path(__file__).resolve().parent


def _env(**extra: str) -> dict[str, str]:
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env["PYTHONPATH"]])
    env["OMP_NUM_THREADS"] = "1"
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    env.update(extra)
    return env


def torchrun(*args: str, cwd: Path, timeout: float = 300, nproc: int = 2, **env: str):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", str(nproc), *map(str, args)]
    return subprocess.run(
        command, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=timeout
    )


def snnkit(*args: str, cwd: Path, timeout: float = 300, **env: str):
    command = [sys.executable, "-m", "snnkit", *map(str, args)]
    return subprocess.run(
        command, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=timeout
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the sampler ---------------------------------------------------------------------------


def test_shards_cover_the_global_batch_once_with_weights_averaging_to_one():
    index = torch.arange(10, 25)
    for size in (1, 2, 3, 4):
        parts = [shard(index, World(r, size)) for r in range(size)]
        assert torch.equal(torch.cat([p for p, _ in parts]), index)
        assert sum(w for _, w in parts) / size == pytest.approx(1.0)
    small = [shard(index[:1], World(r, 2)) for r in range(2)]
    assert small[1][1] == 0.0 and len(small[1][0]) == 1  # joins with weight 0
    assert shard(index, SINGLE) == (index, 1.0)


def test_world_comes_from_torchruns_environment():
    assert world_from_env({}) == SINGLE
    assert world_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == World(3, 4, 1)


# -- 1. exactness of the averaged gradient -------------------------------------------------


@pytest.fixture(scope="module")
def ddp_gradients(tmp_path_factory):
    """Each method's gradient from two gloo ranks: DDP as shipped, and with a summing
    all-reduce (the broken variant)."""
    found = {}
    for mode in ("average", "sum"):
        out = tmp_path_factory.mktemp(mode)
        done = torchrun(TESTS / "fixtures" / "ddp_gradients.py", out, mode, cwd=out)
        assert done.returncode == 0, done.stderr[-3000:]
        found[mode] = {m: torch.load(out / f"{m}.pt") for m in METHODS}
    return found


def _single_process_gradient(method: str) -> dict[str, torch.Tensor]:
    trainer = Trainer(config_for(method))
    trainer.backward(global_batch())
    return {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()}


def _relative_error(got: dict, want: dict) -> float:
    """The largest |got - want| over every parameter, relative to the largest |want|."""
    assert got.keys() == want.keys()
    scale = max(w.abs().max().item() for w in want.values())
    assert scale > 0, "the reference gradient is zero: the check would prove nothing"
    return max((got[k] - want[k]).abs().max().item() for k in want) / scale


@pytest.mark.slow  # two torchrun launches: ~1 min, more on a loaded machine
@pytest.mark.parametrize("method", METHODS)
def test_ddp_gradient_equals_the_single_process_gradient(ddp_gradients, method):
    want = _single_process_gradient(method)
    err = _relative_error(ddp_gradients["average"][method], want)
    print(f"\n{method:22s} DDP (2 gloo ranks) vs 1 process: max rel err {err:.1e}")
    assert err <= 1e-12
    wrong = _relative_error(ddp_gradients["sum"][method], want)
    print(f"{method:22s} summed instead of averaged:        max rel err {wrong:.1e}")
    assert wrong > 0.5  # the check tells a broken all-reduce apart


# -- 2. a training run ----------------------------------------------------------------------

TASK = (
    "--dataset", "yinyang", "--data-opt", "size=64", "--hidden", "16", "--batch-size", "16",
    "--dtype", "float64", "--schedule", "none", "--seed", "3", "--no-progress",
)  # fmt: skip
TASK_CONFIG = dict(
    dataset="yinyang",
    dataset_options={"size": 64},
    hidden="16",
    batch_size=16,
    dtype="float64",
    schedule="none",
    seed=3,
)


def _history(db: Path) -> list[dict]:
    with ResultsStore(db) as store:
        (record,) = store.runs(status=None)
        assert record.status == "completed"
        return record.epochs


def _close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


@pytest.mark.slow
def test_two_epochs_under_torchrun_train_what_one_process_trains(tmp_path):
    ddp = torchrun(
        "-m", "snnkit", "run", *TASK, "--epochs", "2", "--db", tmp_path / "ddp.db",
        "--out", tmp_path / "ddp", "--json", tmp_path / "ddp.json", cwd=tmp_path,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("recorded as run") == 1  # rank 0 alone reports
    one = run(RunConfig(epochs=2, **TASK_CONFIG), db=None, out=tmp_path / "one", progress=False)
    history = _history(tmp_path / "ddp.db")
    assert len(history) == 2
    for got, want in zip(history, one.epochs, strict=True):
        # stated tolerance: the same trajectory up to the order of float64 sums
        assert _close(got["train_loss"], want.train_loss, 1e-9)
        assert _close(got["validation_loss"], want.validation_loss, 1e-9)
        for key in ("train_accuracy", "validation_accuracy", "test_accuracy"):
            assert got[key] == getattr(want, key), key
    summary = json.loads((tmp_path / "ddp.json").read_text())
    assert summary["test_accuracy"] == one.final.test_accuracy
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == [".lock", "checkpoint.pt"]


@pytest.mark.slow
def test_snnkit_run_nproc_resumes_a_ddp_run_exactly(tmp_path):
    common = (*TASK, "--db", tmp_path / "r.db", "--out", tmp_path / "ckpt", "--nproc", "2")
    first = snnkit("run", *common, "--epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    again = snnkit("run", *common, "--epochs", "1", cwd=tmp_path)
    assert again.returncode == 2 and "pass --resume" in again.stderr  # checked once, up front
    assert len(again.stderr.strip().splitlines()) == 1
    resumed = snnkit("run", *common, "--epochs", "2", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    one = run(RunConfig(epochs=2, **TASK_CONFIG), db=None, out=tmp_path / "one", progress=False)
    history = _history(tmp_path / "r.db")
    assert [e["epoch"] for e in history] == [1, 2]
    for got, want in zip(history, one.epochs, strict=True):
        assert _close(got["train_loss"], want.train_loss, 1e-9)
        assert got["test_accuracy"] == want.test_accuracy


# -- 3. failures end the job ----------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [e.split(b"=", 1)[1] for e in environ if e.startswith(b"RANK=")]
    return int(ranks[0]) if ranks else None


def _wait_for_epoch(db: Path, seconds: float = 240) -> None:
    """Until the run has logged an epoch (the workers are training)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if db.exists():
            with ResultsStore(db) as store:
                runs = store.runs(status=None)
                if runs and runs[0].epochs:
                    return
        time.sleep(0.5)
    raise AssertionError("the run logged no epoch in time")


@pytest.mark.slow
def test_a_killed_rank_ends_snnkit_run_nproc_with_one_line(tmp_path):
    db = tmp_path / "r.db"
    command = [sys.executable, "-m", "snnkit", "run", *TASK, "--epochs", "500"]
    command += ["--db", str(db), "--out", str(tmp_path / "c"), "--nproc", "2"]
    launcher = subprocess.Popen(
        command, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for_epoch(db)
        (victim,) = [p for p in _children(launcher.pid) if _rank_of(p) == 1]
        os.kill(victim, signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode == 128 + signal.SIGKILL
    failed = [line for line in stderr.splitlines() if line.startswith("failed:")]
    assert failed == ["failed: rank 1 of 2 was killed by SIGKILL; the others were stopped"]
    assert "Traceback" not in stderr
    with ResultsStore(db) as store:  # rank 0 stopped (by the launcher or the lost peer)
        (record,) = store.runs(status=None)
        assert record.status in ("interrupted", "failed") and record.epochs


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_a_rank_whose_peer_is_gone_stops_by_itself_instead_of_hanging(tmp_path, how):
    """Two workers started by hand (no launcher to stop them). Rank 1 killed: rank 0 sees
    the connection close. Rank 1 frozen (SIGSTOP, the connection stays open): rank 0
    waits for SNNKIT_DDP_TIMEOUT (20 s), not forever. Either way one line, exit 1."""
    port = str(_free_port())
    args = ["run", *TASK, "--epochs", "500", "--db", str(tmp_path / "r.db")]
    workers = []
    for rank in (0, 1):
        env = _env(
            RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port, SNNKIT_DDP_TIMEOUT="20",
        )  # fmt: skip
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "snnkit", *args, "--out", str(tmp_path / "c")],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        )
    try:
        _wait_for_epoch(tmp_path / "r.db")
        workers[1].send_signal(getattr(signal, how))
        start = time.monotonic()
        _, stderr = workers[0].communicate(timeout=180)
        waited = time.monotonic() - start
    finally:
        for w in workers:
            w.kill()
            w.wait()
    assert workers[0].returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("failed: rank 0: another process"), stderr
    print(f"\n{how}: rank 0 ended after {waited:.1f} s: {lines[0]}")
    if how == "SIGSTOP":
        assert 15 < waited < 150  # the timeout, plus a loaded machine's slack
    with ResultsStore(tmp_path / "r.db") as store:
        (record,) = store.runs(status=None)
        assert record.status == "failed"


# -- 4. two nodes, one rendezvous -----------------------------------------------------------


@pytest.mark.slow
def test_two_launchers_meet_at_one_rendezvous_endpoint(tmp_path):
    """`torchrun --nnodes 2 --rdzv-backend c10d --rdzv-endpoint HOST:PORT` twice, as on
    two machines (here both on 127.0.0.1): one job of two ranks, one record."""
    endpoint = f"127.0.0.1:{_free_port()}"
    launchers = []
    for node in (0, 1):
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
        command += ["--nproc-per-node", "1", "--rdzv-backend", "c10d"]
        command += [
            "--rdzv-endpoint",
            endpoint,
            "--rdzv-id",
            "snnkit-test",
            "--node-rank",
            str(node),
        ]
        command += ["-m", "snnkit", "run", *TASK, "--epochs", "1"]
        command += ["--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "c")]
        launchers.append(
            subprocess.Popen(
                command,
                cwd=tmp_path,
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        )
    outputs = [p.communicate(timeout=300) for p in launchers]
    for p, (_, err) in zip(launchers, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert sum(out.count("recorded as run") for out, _ in outputs) == 1
    history = _history(tmp_path / "r.db")
    one = run(RunConfig(epochs=1, **TASK_CONFIG), db=None, out=tmp_path / "one", progress=False)
    assert _close(history[0]["train_loss"], one.final.train_loss, 1e-9)


def test_nproc_inside_torchrun_is_refused(tmp_path):
    done = snnkit("run", "--nproc", "2", cwd=tmp_path, RANK="0", WORLD_SIZE="2", LOCAL_RANK="0")
    assert done.returncode == 2
    assert "under torchrun leave it out" in done.stderr and len(done.stderr.splitlines()) == 1
