"""The GPU check (``make gpu-check``): everything that needs a CUDA device, in minutes.

1. every ``-m gpu`` test (the CUDA kernels of each plugin against its torch path);
2. ``snnkit conformance --device cuda`` in float64 and float32;
3. kernel bandwidth: forward + backward of each raster method's neuron module on a large
   population, as effective bytes moved per second against the device's copy bandwidth
   (``clone`` of a large tensor); the minimum traffic counted is what a fused kernel must
   read and write (current in, membrane and spikes out; membrane and spike gradient in,
   current gradient out: 24 bytes per neuron-step in float32);
4. one ``snnkit bench --device cuda`` size against the BPTT oracle.

It writes one JSON summary (``--out``) and prints a Markdown table for
``docs/performance.md``. Without a CUDA device it says so and exits 1: a machine without a
GPU never passes this check. Each step has a time limit so the whole check fits in about
8 minutes on a current GPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMITS = {"gpu-tests": 240, "conformance": 180, "bench": 90}  # seconds per step


def _ensure_installed() -> None:
    """An editable install (entry points for the bundled plugins), offline if need be."""
    try:
        from importlib import metadata

        metadata.distribution("snnkit")
    except Exception:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-e",
                str(ROOT),
            ],
            check=True,
        )


def _device() -> dict | None:
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    try:
        import cupy

        cupy_version = cupy.__version__
    except ImportError:
        cupy_version = None
    return {
        "name": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "capability": f"{props.major}.{props.minor}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cupy": cupy_version,
    }


def _run(step: str, cmd: list[str], workdir: Path) -> dict:
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=workdir, capture_output=True, text=True, timeout=LIMITS[step]
        )
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc = 124
        out = (
            (exc.stdout or b"").decode(errors="replace")
            if isinstance(exc.stdout, bytes)
            else (exc.stdout or "")
        )
    seconds = time.perf_counter() - start
    print(f"[{step}] exit {rc} in {seconds:.0f} s", flush=True)
    return {"returncode": rc, "seconds": round(seconds, 1), "tail": out[-4000:]}


def _pytest_gpu(tmp: Path) -> dict:
    xml = tmp / "gpu.xml"
    result = _run(
        "gpu-tests",
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "gpu",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={xml}",
        ],
        ROOT,
    )
    if xml.exists():
        import xml.etree.ElementTree as ET

        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        result["counts"] = {
            k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")
        }
    result["passed"] = result["returncode"] == 0 and result.get("counts", {}).get("tests", 0) > 0
    return result


def _own_methods() -> list[str]:
    """``--grad`` for every installed method but the peer libraries' (the peers plugin's:
    they are compared with the oracle, not required to match it; docs/results.md)."""
    from snnkit.registry import get_registry

    entries = get_registry().listing("gradient")
    return [a for e in entries if e.plugin.name != "peers" for a in ("--grad", e.name)]


def _conformance(tmp: Path) -> dict:
    out = tmp / "conformance.json"
    result = _run(
        "conformance",
        [
            sys.executable,
            "-m",
            "snnkit.cli",
            "conformance",
            *_own_methods(),
            "--device",
            "cuda",
            "--dtype",
            "float64",
            "--dtype",
            "float32",
            "--json",
            str(out),
        ],
        ROOT,
    )
    if out.exists():
        payload = json.loads(out.read_text())
        rows = payload["results"]
        result["passed"] = bool(payload["passed"]) and result["returncode"] == 0
        result["counts"] = {
            s: sum(r["status"] == s for r in rows) for s in ("passed", "failed", "error", "skipped")
        }
        worst: dict[str, float] = {}
        for r in rows:
            if r["status"] == "passed" and r["max_rel_err"] is not None:
                key = f"{r['method']} {r['dtype']}"
                worst[key] = max(worst.get(key, 0.0), r["max_rel_err"])
        result["worst"] = worst
        result["failures"] = [
            f"{r['method']} {r['case']} {r['dtype']}: {r['detail']}"
            for r in rows
            if r["status"] in ("failed", "error")
        ]
    else:
        result["passed"] = False
    return result


def _time_cuda(fn, repeats: int = 5) -> float:
    import torch

    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def _copy_bandwidth(numel: int) -> float:
    """GB/s of ``clone`` (one read and one write of ``numel`` float32)."""
    import torch

    big = torch.empty(numel, device="cuda")
    return 2 * numel * 4 / _time_cuda(big.clone) / 1e9


def _bandwidth(steps: int, batch: int, neurons: int) -> dict:
    import torch

    from snnkit import LIF, get_registry

    device = torch.device("cuda")
    copy_gbs = _copy_bandwidth(steps * batch * neurons)
    registry = get_registry()
    rows = {}
    for name in registry.available("gradient"):  # a clashing name is nobody's to time
        method = registry.gradient(name)
        if method.representation != "raster" or name.startswith("bptt"):
            continue
        try:
            neurons_mod = method.neuron(LIF(tau_mem=20.0), neurons).to(device)
        except Exception as exc:  # a method that cannot build this population
            rows[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        current = (torch.rand(steps, batch, neurons, device=device) * 0.3).requires_grad_()
        grad = torch.randn(steps, batch, neurons, device=device)

        def step(mod=neurons_mod, x=current, g=grad):
            mod.reset_state()
            out = mod(x)
            out.backward(g)

        seconds = _time_cuda(step)
        moved = 24 * steps * batch * neurons  # float32: 3 tensors each way, twice
        gbs = moved / seconds / 1e9
        rows[name] = {
            "seconds": seconds,
            "effective_gb_s": round(gbs, 1),
            "fraction_of_copy": round(gbs / copy_gbs, 3),
            "kernels": method.devices,
        }
        print(
            f"[bandwidth] {name}: {seconds * 1e3:.2f} ms, {gbs:.0f} GB/s "
            f"({gbs / copy_gbs:.0%} of copy)",
            flush=True,
        )
    return {"size": [steps, batch, neurons], "copy_gb_s": round(copy_gbs, 1), "methods": rows}


def _bench(tmp: Path) -> dict:
    out = tmp / "bench.json"
    result = _run(
        "bench",
        [
            sys.executable,
            "-m",
            "snnkit.cli",
            "bench",
            "--device",
            "cuda",
            "--size",
            "500,64,1024",
            "--repeats",
            "5",
            "--json",
            str(out),
        ],
        ROOT,
    )
    if out.exists():
        result["results"] = json.loads(out.read_text())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"))
    parser.add_argument("--size", default="500,64,4096", help="T,B,N of the bandwidth case")
    args = parser.parse_args()
    _ensure_installed()
    device = _device()
    summary = {
        "date": datetime.date.today().isoformat(),
        "host": platform.node(),
        "device": device,
    }
    if device is None:
        summary["passed"] = False
        summary["reason"] = (
            "no CUDA device (torch.cuda.is_available() is False): nothing was checked"
        )
        args.out.write_text(json.dumps(summary, indent=2))
        print(f"gpu-check: {summary['reason']}; run it on a machine with a GPU", file=sys.stderr)
        return 1
    if device["cupy"] is None:
        print(
            "gpu-check: CuPy is not installed; the plugins' CUDA kernels cannot run "
            "(pip install 'snnkit[cuda]')",
            file=sys.stderr,
        )
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        summary["gpu_tests"] = _pytest_gpu(tmp)
        summary["conformance"] = _conformance(tmp)
        t, b, n = (int(x) for x in args.size.split(","))
        try:
            summary["bandwidth"] = _bandwidth(t, b, n)
        except Exception as exc:
            summary["bandwidth"] = {"error": f"{type(exc).__name__}: {exc}"}
        summary["bench"] = _bench(tmp)
    summary["passed"] = bool(
        device["cupy"] and summary["gpu_tests"]["passed"] and summary["conformance"]["passed"]
    )
    args.out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"\n## GPU check, {device['name']}, {summary['date']}\n")
    print(
        f"- gpu tests: {summary['gpu_tests'].get('counts')} (exit {summary['gpu_tests']['returncode']})"
    )
    conf = summary["conformance"]
    print(f"- conformance (cuda, float64 + float32): {conf.get('counts')}")
    for key, err in sorted(conf.get("worst", {}).items()):
        print(f"  - {key}: max rel err {err:.1e}")
    for line in conf.get("failures", [])[:20]:
        print(f"  - FAILED {line}")
    bw = summary["bandwidth"]
    if "methods" in bw:
        print(f"- copy bandwidth {bw['copy_gb_s']} GB/s; neuron fwd+bwd at {bw['size']}:")
        for name, row in bw["methods"].items():
            print(f"  - {name}: {row}")
    print(f"\nwritten {args.out}; {'PASSED' if summary['passed'] else 'FAILED'}")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
