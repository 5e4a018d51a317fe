"""snnkit.threads: the CPUs a process may use (affinity, cgroup quota) and OpenMP's wait policy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snnkit.errors import SnnkitError
from snnkit.threads import available_cpus, cgroup_cpu_limit, default_threads, use_threads

REPO = Path(__file__).resolve().parents[1]


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def membership(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cgroup"
    path.write_text(text)
    return path


def test_cgroup_v2_quota_of_the_process_and_its_parents(tmp_path):
    root = tree(
        tmp_path / "fs",
        {"cpu.max": "max 100000\n", "a/cpu.max": "300000 100000\n", "a/b/cpu.max": "max 100000"},
    )
    assert cgroup_cpu_limit(root, membership(tmp_path, "0::/a/b\n")) == 3.0
    (root / "a/b/cpu.max").write_text("150000 100000\n")  # the tighter one wins
    assert cgroup_cpu_limit(root, membership(tmp_path, "0::/a/b\n")) == 1.5


def test_cgroup_v2_without_quota_or_files_is_no_limit(tmp_path):
    root = tree(tmp_path / "fs", {"cpu.max": "max 100000\n"})
    assert cgroup_cpu_limit(root, membership(tmp_path, "0::/\n")) is None
    assert cgroup_cpu_limit(tmp_path / "nothing", membership(tmp_path, "0::/x\n")) is None
    assert cgroup_cpu_limit(root, tmp_path / "no-such-membership") is None


def test_cgroup_v1_cfs_quota(tmp_path):
    root = tree(
        tmp_path / "fs",
        {
            "cpu,cpuacct/job/cpu.cfs_quota_us": "200000\n",
            "cpu,cpuacct/job/cpu.cfs_period_us": "100000\n",
            "cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
            "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        },
    )
    text = "4:memory:/job\n3:cpu,cpuacct:/job\n0::/\n"
    assert cgroup_cpu_limit(root, membership(tmp_path, text)) == 2.0
    (root / "cpu,cpuacct/job/cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(root, membership(tmp_path, text)) is None


def test_cgroup_files_that_do_not_parse_are_ignored(tmp_path):
    root = tree(tmp_path / "fs", {"cpu.max": "garbage\n", "a/cpu.max": "50000 100000"})
    assert cgroup_cpu_limit(root, membership(tmp_path, "0::/a\nnonsense\n")) == 0.5


def _in_child(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    environ.update(env, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_available_cpus_follows_the_affinity_mask():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no affinity masks here")
    first = min(os.sched_getaffinity(0))
    code = (
        f"import os; os.sched_setaffinity(0, {{{first}}}); "
        "from snnkit.threads import available_cpus, default_threads; "
        "print(available_cpus(), default_threads())"
    )
    assert _in_child(code) == "1 1"
    assert available_cpus() == min(len(os.sched_getaffinity(0)), available_cpus())


def test_omp_num_threads_is_the_users_choice(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "bogus")
    assert default_threads() == available_cpus()


def test_importing_snnkit_makes_openmp_threads_sleep_unless_the_user_chose():
    code = "import os, snnkit; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert _in_child(code) == "PASSIVE"
    assert _in_child(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
    assert _in_child(code, GOMP_SPINCOUNT="300000") == "None"


def test_use_threads_sets_torch_and_refuses_nonsense():
    before = torch.get_num_threads()
    try:
        assert use_threads(1) == 1 and torch.get_num_threads() == 1
        for bad in (0, -1, (os.cpu_count() or 1) + 1):  # far too many threads crash torch
            with pytest.raises(SnnkitError, match="--threads must be between 1 and"):
                use_threads(bad)
    finally:
        torch.set_num_threads(before)
