"""Kernels on the CPU: a plugin's kernel source compiled by the host C++ compiler.

The CUDA kernels' templates (``kernels/*.cu``) compile as C++ once :data:`PRELUDE` has
defined CUDA's qualifiers and thread indices away, so a plugin can (1) run its CUDA
kernels on the CPU thread by thread (``emulate=True``: how CI checks their logic without
a GPU) and (2) ship CPU drivers written against the same per-column step functions
(plain functions that loop themselves, parallelised with OpenMP over
``torch.get_num_threads()`` threads): the arithmetic is written once for both devices.

:func:`compile_kernel` mirrors :func:`snnkit.kernels.compile_kernel`: it instantiates
``name<float|double>``, caches the shared library on disk (``$SNNKIT_CACHE`` or
``~/.cache/snnkit``) keyed by the full source, flags and compiler, and returns a callable
taking ``(grid, block, args)`` like a CUDA launch, with CPU tensors as pointers. No
fast-math and no FMA contraction: results round like the torch code, step for step, but
for ``exp``, which comes from the C library (scalar, or vector with libmvec; both within a
few ulp). Builds target the machine (:data:`TUNINGS`, probed once).
``SNNKIT_HOST_KERNELS=0`` turns the CPU drivers off (plugins fall back to torch).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from snnkit.errors import SnnkitError
from snnkit.kernels import ctype

__all__ = ["PRELUDE", "HostKernel", "available", "compile_kernel", "compiler", "probed"]

PRELUDE = """\
#include <cmath>
#include <cstddef>
#include <utility>
using std::exp; using std::fabs; using std::floor; using std::fmax; using std::fmin;
using std::log; using std::sqrt; using std::expm1;
#define __host__
#define __device__
#define __global__
#define __forceinline__ inline
struct snnkit_dim3 { unsigned x = 0, y = 0, z = 0; };
static snnkit_dim3 blockIdx, threadIdx, blockDim;
static int snnkit_threads = 1;  // OpenMP threads a CPU driver may use
#ifdef SNNKIT_VECTOR_MATH  // glibc's libmvec has vector exp/expf: loops calling exp vectorise
extern "C" double exp(double) noexcept __attribute__((simd("notinbranch")));
extern "C" float expf(float) noexcept __attribute__((simd("notinbranch")));
#endif
"""

_LAUNCHER = """
template <typename... A, std::size_t... I>
static void snnkit_unpack(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<A*>(args[I])...);
}
template <typename... A>
static constexpr unsigned snnkit_arity(void (*)(A...)) { return sizeof...(A); }
template <typename... A>
static void snnkit_call(void (*f)(A...), void** args) {
    snnkit_unpack(f, args, std::index_sequence_for<A...>{});
}
extern "C" unsigned snnkit_arguments() { return snnkit_arity(&KERNEL); }
extern "C" void snnkit_run(unsigned grid, unsigned block, int threads, int emulate, void** args) {
    snnkit_threads = threads;
    if (!emulate) {
        snnkit_call(&KERNEL, args);
        return;
    }
    blockDim.x = block;
    for (unsigned b = 0; b < grid; ++b) {
        for (unsigned t = 0; t < block; ++t) {
            blockIdx.x = b;
            threadIdx.x = t;
            snnkit_call(&KERNEL, args);
        }
    }
}
"""

# no fast-math: IEEE rounding as in torch. -fno-trapping-math lets the compiler turn the
# spike comparisons into vector selects; -fno-math-errno lets it inline floor.
FLAGS = (
    "-std=c++17",
    "-O3",
    "-ffp-contract=off",
    "-fno-trapping-math",
    "-fno-math-errno",
    "-fopenmp",
    "-shared",
    "-fPIC",
)

# Tuning for the machine, each part used only if a probe build here accepts it: the widest
# vectors the processor has, and the vector math library (libmvec, <= 4 ulp like the scalar
# exp) so that loops with exp (the surrogates) vectorise. SNNKIT_HOST_NATIVE=0 turns it off.
TUNINGS = (("-march=native", "-DSNNKIT_VECTOR_MATH", "-lmvec"), ("-march=native",), ())
_PROBE = """
extern "C" void snnkit_probe(const float* x, float* y, const double* u, double* w, int n) {
    for (int k = 0; k < n; ++k) { y[k] = exp(x[k]); w[k] = exp(u[k]); }
}
"""


def compiler() -> str | None:
    """The C++ compiler used (``$CXX``, else g++ or c++ on PATH), or None if none is found."""
    wanted = os.environ.get("CXX")
    if wanted:
        return shutil.which(wanted)
    return shutil.which("g++") or shutil.which("c++")


def available() -> bool:
    """A C++ compiler is present and ``SNNKIT_HOST_KERNELS`` is not ``0``."""
    return os.environ.get("SNNKIT_HOST_KERNELS", "1") != "0" and compiler() is not None


@functools.cache
def tuning(cxx: str) -> tuple[str, ...]:
    """The first of :data:`TUNINGS` that ``cxx`` builds and this process loads (probed once)."""
    if os.environ.get("SNNKIT_HOST_NATIVE", "1") == "0":
        return ()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "probe.cpp", Path(tmp) / "probe.so"
        src.write_text(PRELUDE + _PROBE)
        for flags in TUNINGS[:-1]:
            done = subprocess.run(
                [cxx, *FLAGS, *flags, str(src), "-o", str(out)], capture_output=True
            )
            try:
                if done.returncode == 0 and ctypes.CDLL(str(out)).snnkit_probe:
                    return flags
            except (OSError, AttributeError):
                pass
    return ()


def probed(what: str) -> Callable[[Callable[[], object]], Callable[[], bool]]:
    """Decorate a plugin's tiny trial call of its CPU kernels; the result says whether they
    build and run here (tried once per process, ``cache_clear()`` to try again): False
    without a compiler or with ``SNNKIT_HOST_KERNELS=0``, and after a failed build, which
    warns once naming ``what`` so the plugin falls back to its torch path."""

    def decorate(trial: Callable[[], object]) -> Callable[[], bool]:
        @functools.cache
        def works() -> bool:
            if not available():
                return False
            try:
                trial()
            except SnnkitError as exc:
                warnings.warn(
                    f"{what} CPU kernels unavailable, using the torch path: {exc}", stacklevel=4
                )
                return False
            return True

        return functools.wraps(trial)(works)

    return decorate


@functools.cache
def _processor() -> str:
    """What -march=native compiles for: the CPU's model and feature flags, as Linux lists them."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    keys = ("model name", "flags", "Features", "CPU part")
    return "\n".join(ln for ln in info.split("\n\n")[0].splitlines() if ln.startswith(keys))


def cache_dir() -> Path:
    root = os.environ.get("SNNKIT_CACHE") or Path.home() / ".cache" / "snnkit"
    return Path(root) / "host"


class HostKernel:
    """A compiled kernel or CPU driver; call it like a CUDA launch (CPU tensors)."""

    def __init__(self, library: ctypes.CDLL, name: str, dtype: torch.dtype, emulate: bool):
        self.library, self.name, self.dtype, self.emulate = library, name, dtype, emulate
        library.snnkit_arguments.restype = ctypes.c_uint
        self.arity = library.snnkit_arguments()

    def __call__(
        self, grid: Sequence[int], block: Sequence[int], args: Sequence[Any], stream=None
    ) -> None:
        if len(args) != self.arity:
            raise ValueError(f"kernel {self.name}: {len(args)} arguments, expected {self.arity}")
        scalar = ctypes.c_float if self.dtype == torch.float32 else ctypes.c_double
        values = []
        for arg in args:
            if isinstance(arg, torch.Tensor):
                if arg.device.type != "cpu" or not arg.is_contiguous():
                    raise ValueError(f"kernel {self.name}: needs contiguous CPU tensors")
                if arg.is_floating_point() and arg.dtype != self.dtype:
                    raise ValueError(f"kernel {self.name} runs in {self.dtype}, got {arg.dtype}")
                values.append(ctypes.c_void_p(arg.data_ptr()))
            elif arg is None:
                values.append(ctypes.c_void_p(None))
            elif isinstance(arg, bool | int):
                values.append(ctypes.c_int(int(arg)))
            elif isinstance(arg, float):
                values.append(scalar(arg))
            else:
                raise TypeError(f"kernel {self.name}: cannot pass a {type(arg).__name__}")
        pointers = (ctypes.c_void_p * len(values))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values]
        )
        self.library.snnkit_run(
            ctypes.c_uint(grid[0] if self.emulate else 1),
            ctypes.c_uint(block[0] if self.emulate else 1),
            ctypes.c_int(torch.get_num_threads()),
            ctypes.c_int(int(self.emulate)),
            pointers,
        )


_LOADED: dict[str, HostKernel] = {}
_LOCK = threading.Lock()


def compile_kernel(
    source: str, name: str, dtype: torch.dtype, options: tuple[str, ...] = (), *, emulate=False
) -> HostKernel:
    """Build ``name<float|double>`` from ``source`` into a shared library (cached on disk).

    ``emulate``: ``name`` is a CUDA ``__global__`` kernel, run once per (block, thread) of
    the launch grid, serially; otherwise a CPU driver called once. ``options`` (CUDA
    compiler flags) are ignored: the host flags are fixed (:data:`FLAGS`).
    """
    cxx = compiler()
    if cxx is None:
        raise SnnkitError(
            "no C++ compiler found for the CPU kernels; install g++ or set CXX "
            "(or SNNKIT_HOST_KERNELS=0 to use the torch path)"
        )
    code = PRELUDE + source + _LAUNCHER.replace("KERNEL", f"{name}<{ctype(dtype)}>")
    with _LOCK:
        flags = (*FLAGS, *tuning(cxx))
        target = _processor() if "-march=native" in flags else ""
        digest = hashlib.sha256("\0".join((code, cxx, *flags, target)).encode()).hexdigest()
        key = f"{digest[:24]}-{int(emulate)}"
        kernel = _LOADED.get(key)
        if kernel is None:
            library = _build(code, digest[:24], cxx, flags)
            kernel = HostKernel(ctypes.CDLL(str(library)), name, dtype, emulate)
            _LOADED[key] = kernel
    return kernel


def _build(code: str, digest: str, cxx: str, flags: tuple[str, ...]) -> Path:
    """The shared library for ``code``: from the cache, or compiled and renamed into it."""
    directory = cache_dir()
    library = directory / f"{digest}.so"
    if library.exists():
        return library
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        src, out = Path(tmp) / "kernel.cpp", Path(tmp) / "kernel.so"
        src.write_text(code)
        done = subprocess.run(
            [cxx, *flags, str(src), "-o", str(out)], capture_output=True, text=True
        )
        if done.returncode != 0:
            first = next(
                (ln for ln in done.stderr.splitlines() if "error" in ln), done.stderr[:300]
            )
            raise SnnkitError(f"compiling a CPU kernel failed ({cxx}): {first.strip()}")
        os.replace(out, library)  # atomic: concurrent builders never see a torn file
    return library
