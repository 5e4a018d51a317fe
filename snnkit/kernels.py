"""Compiled kernels shared by the plugins: where they run, compile once, launch on tensors.

A method's kernels run on one of three backends, chosen the same way for every method by
:func:`select`: ``"cuda"`` (CuPy, for CUDA tensors), ``"cpu"`` (the same source compiled
by the machine's C++ compiler with a CPU driver, :mod:`snnkit.host`) or ``"torch"`` (the
method's plain torch code, no compiled kernel). A :class:`Backend` compiles a kernel
for the first two; the layer option ``backend=auto|cuda|cpu|torch`` forces one.

A plugin ships its kernels as package data (``kernels/*.cu``) written as templates over the
scalar type ``T``; :func:`compile_kernel` instantiates one for float or double through an
NVRTC name expression (``name<float>``) and caches the result, and :func:`launch` runs it
on torch's current CUDA stream with tensors passed as raw device pointers (no copies).

CuPy is optional (``pip install snnkit[cuda]``): it is imported inside these functions
only, so importing this module never needs it. Kernels are compiled without fast-math.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch

from snnkit.errors import SnnkitError

__all__ = [
    "BACKENDS",
    "Backend",
    "Kernel",
    "broadcast",
    "check_backend",
    "columns_unfit",
    "cpu_backend",
    "cuda_backend",
    "launch_grid",
    "select",
    "compile_kernel",
    "ctype",
    "cupy_available",
    "instantiate",
    "launch",
    "nvcc_ptx",
    "read_source",
]

BACKENDS: tuple[str, ...] = ("auto", "cuda", "cpu", "torch")
BLOCK = 128  # threads per block of the one-thread-per-column kernels
_PARTS_BYTES = 1 << 25  # a CPU driver's partial sums across the batch, at most (32 MB)
_CTYPES = {torch.float32: "float", torch.float64: "double"}
_INT32 = (-(2**31), 2**31 - 1)


@functools.cache
def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy
    except ImportError:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CuPy without a driver or device raises its own runtime errors
        return False


def ctype(dtype: torch.dtype) -> str:
    """The C++ scalar type of a kernel instantiated for ``dtype``: ``"float"`` or ``"double"``."""
    try:
        return _CTYPES[dtype]
    except KeyError:
        raise SnnkitError(
            f"the CUDA kernels run in float32 or float64, not {dtype}; convert the model "
            "with .float() or .double()"
        ) from None


def read_source(package: str, filename: str) -> str:
    """The text of a kernel file shipped as package data, e.g. ``("pkg", "kernels/x.cu")``."""
    resource = resources.files(package)
    for part in filename.split("/"):
        resource = resource / part
    return resource.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Kernel:
    """A compiled kernel instantiated for one scalar type; call it like :func:`launch`."""

    function: Any  # cupy.RawKernel
    name: str
    dtype: torch.dtype

    def __call__(
        self,
        grid: Sequence[int],
        block: Sequence[int],
        args: Sequence[Any],
        stream: torch.cuda.Stream | None = None,
    ) -> None:
        launch(self, grid, block, args, stream)


_CACHE: dict[tuple[str, str, torch.dtype, tuple[str, ...]], Kernel] = {}
_LOCK = threading.Lock()


def compile_kernel(
    source: str, name: str, dtype: torch.dtype, options: tuple[str, ...] = ()
) -> Kernel:
    """Compile the template kernel ``name<float|double>`` from ``source`` (cached).

    The cache key is (sha256 of ``source``, ``name``, ``dtype``, ``options``), so sources
    that differ in a prepended snippet (e.g. a surrogate) compile separately.
    ``--std=c++17`` is always passed; fast-math never is.
    """
    key = (hashlib.sha256(source.encode()).hexdigest(), name, dtype, tuple(options))
    with _LOCK:
        kernel = _CACHE.get(key)
        if kernel is None:
            import cupy

            expression = f"{name}<{ctype(dtype)}>"
            module = cupy.RawModule(
                code=source, options=("--std=c++17", *options), name_expressions=[expression]
            )
            kernel = Kernel(module.get_function(expression), name, dtype)
            _CACHE[key] = kernel
    return kernel


def _argument(
    arg: Any, kernel: Kernel, device: torch.device | None
) -> tuple[Any, torch.device | None]:
    """One launch argument as CuPy passes it, and the device of the tensors seen so far."""
    import numpy as np

    if isinstance(arg, torch.Tensor):
        if not arg.is_cuda:
            raise ValueError(f"kernel {kernel.name}: tensor on {arg.device}, expected CUDA")
        if device is not None and arg.device != device:
            raise ValueError(f"kernel {kernel.name}: tensors on {device} and {arg.device}")
        if not arg.is_contiguous():
            raise ValueError(
                f"kernel {kernel.name}: tensor of shape {tuple(arg.shape)} is not contiguous"
            )
        if arg.is_floating_point() and arg.dtype != kernel.dtype:
            raise ValueError(
                f"kernel {kernel.name} runs in {kernel.dtype}, got a {arg.dtype} tensor"
            )
        return np.uint64(arg.data_ptr()), arg.device
    if arg is None:  # a null pointer, for arrays the kernel is told not to touch
        return np.uint64(0), device
    if isinstance(arg, np.generic):
        return arg, device
    if isinstance(arg, bool | int):
        if not _INT32[0] <= arg <= _INT32[1]:
            raise ValueError(
                f"kernel {kernel.name}: {arg} does not fit an int; pass numpy.int64 for a 64-bit parameter"
            )
        return np.int32(arg), device
    if isinstance(arg, float):
        return (np.float32 if kernel.dtype == torch.float32 else np.float64)(arg), device
    raise TypeError(f"kernel {kernel.name}: cannot pass a {type(arg).__name__}")


def launch(
    kernel: Kernel,
    grid: Sequence[int],
    block: Sequence[int],
    args: Sequence[Any],
    stream: torch.cuda.Stream | None = None,
) -> None:
    """Run ``kernel`` on ``stream`` (default: torch's current stream of the tensors' device).

    Tensors go as raw pointers (contiguous, all on one CUDA device, floating ones in the
    kernel's dtype), ``None`` as a null pointer, Python ints as ``int32``, Python floats
    as the kernel's scalar type; numpy scalars pass unchanged (e.g. ``numpy.int64``).
    """
    import cupy

    converted, device = [], None
    for arg in args:
        value, device = _argument(arg, kernel, device)
        converted.append(value)
    index = device.index if device is not None and device.index is not None else None
    if index is None:
        index = torch.cuda.current_device()
    if stream is None:
        stream = torch.cuda.current_stream(index)
    with cupy.cuda.Device(index), cupy.cuda.ExternalStream(stream.cuda_stream, index):
        kernel.function(tuple(grid), tuple(block), tuple(converted))


@dataclass(frozen=True)
class Backend:
    """Where a method's compiled kernels run: ``name`` is ``"cuda"`` or ``"cpu"``.

    :meth:`kernel` compiles ``name + suffix`` from the kernel source plus ``extra()`` (a
    CPU driver's source); ``groups`` > 0 tells kernels that reduce across the batch how
    many partial sums the CPU driver keeps. Build one with :func:`cuda_backend` or
    :func:`cpu_backend`.
    """

    name: str
    compile: Callable[..., Kernel]
    suffix: str = ""
    extra: Callable[[], str] = str
    groups: int = 0

    def kernel(
        self, source: str, name: str, dtype: torch.dtype, options: Sequence[str] = ()
    ) -> Kernel:
        return self.compile(source + self.extra(), name + self.suffix, dtype, tuple(options))

    def partial_sums(
        self, batch: int, size: int, dtype: torch.dtype, most: int | None = None
    ) -> int:
        """How many sample groups a CPU driver's reduction across the batch uses, each
        summing into its own slice of ``size`` elements (e.g. a weight gradient): at most
        ``most`` (default :attr:`groups`), ``batch``, and as many slices as 32 MB hold (at
        a 7000 x 256 weight 4, not 32 slices of 7 MB). A function of the shapes alone, so
        results do not depend on the thread count. 1 on CUDA (``atomicAdd``)."""
        if not self.groups:
            return 1
        fit = _PARTS_BYTES // max(size * dtype.itemsize, 1)
        return max(1, min(self.groups if most is None else most, batch, fit))


def cuda_backend() -> Backend:
    """Kernels compiled by CuPy (NVRTC) for CUDA tensors."""
    # compile_kernel is looked up at call time, so a test can swap it for an emulation
    return Backend("cuda", lambda *args: compile_kernel(*args))


def cpu_backend(driver: Callable[[], str], groups: int = 0) -> Backend:
    """The same kernels compiled with a CPU driver (``driver()`` returns its C++ source,
    defining ``<kernel>_host`` entry points; see :mod:`snnkit.host`)."""

    def build(*args):
        from snnkit import host  # host imports this module

        return host.compile_kernel(*args)

    return Backend("cpu", build, "_host", driver, groups)


def check_backend(choice: str, available: Sequence[str], owner: str) -> str:
    """``choice`` if it names one of ``available`` (or ``"auto"``), else a one-line error."""
    if choice == "auto" or choice in available:
        return choice
    kinds = ", ".join(("auto", *available))
    raise SnnkitError(f"backend={choice!r}: {owner} runs on {kinds}; use one of those")


def select(
    x: torch.Tensor,
    choice: str,
    owner: str,
    *,
    cuda: Backend | None = None,
    cpu: Backend | None = None,
    cpu_works: Callable[[], bool] | None = None,
    unfit: str | None = None,
) -> Backend | None:
    """The backend a call on ``x`` runs on, or None for the torch path.

    ``"auto"`` takes the compiled kernels of ``x``'s device when the method has them, they
    can run here (CuPy and a GPU; a C++ compiler, ``cpu_works()``) and the call fits them
    (``unfit`` is None, else the reason it does not, e.g. "recurrent layers"); otherwise
    torch. ``"cuda"`` and ``"cpu"`` insist: a one-line :class:`SnnkitError` says why they
    cannot run this call. ``"torch"`` never compiles.
    """
    if choice == "torch":
        return None
    here = cuda if x.is_cuda else cpu if x.device.type == "cpu" else None
    runs = here is not None and (
        cupy_available() if here.name == "cuda" else cpu_works is None or cpu_works()
    )
    if choice == "auto":
        return here if runs and unfit is None else None
    wanted = {"cuda": cuda, "cpu": cpu}.get(choice)
    if choice not in BACKENDS or wanted is None:
        kinds = ", ".join(b for b, k in (("cuda", cuda), ("cpu", cpu)) if k) or "no compiled"
        raise SnnkitError(f"backend={choice!r}: {owner} has {kinds} kernels; use auto or torch")
    if here is not wanted:
        raise SnnkitError(
            f"backend={choice!r}: {owner}'s tensors are on {x.device}; move the model or use auto"
        )
    if not runs:
        need = (
            "CuPy and a CUDA device"
            if choice == "cuda"
            else "a C++ compiler (SNNKIT_HOST_KERNELS!=0)"
        )
        raise SnnkitError(f"backend={choice!r}: {owner}'s kernels need {need}; use auto or torch")
    if unfit is not None:
        raise SnnkitError(
            f"backend={choice!r}: {owner}'s kernels do not run {unfit}; use auto or torch"
        )
    return wanted


def columns_unfit(current: torch.Tensor, params: Sequence[Any], w_rec: Any = None) -> str | None:
    """Why one-thread-per-column kernels cannot run a call (None: they can): they take a
    feed-forward current ``[T, B, N]`` with at least one step and column, and parameters
    (None or tensors) of at most one dimension. For :func:`select`'s ``unfit``."""
    if w_rec is not None:
        return "recurrent layers"
    if current.dim() != 3 or current.numel() == 0:
        return f"a current of shape {tuple(current.shape)}"
    if any(p is not None and p.dim() > 1 for p in params):
        return "parameters of more than one dimension"
    return None


def launch_grid(threads: int, block: int = BLOCK) -> tuple[int]:
    """The 1-D grid that gives each of ``threads`` work items one thread."""
    return (max(1, (threads + block - 1) // block),)


def broadcast(x: torch.Tensor | None, *shape: int) -> torch.Tensor | None:
    """``x`` expanded to ``shape`` and laid out contiguously for a kernel (None stays None)."""
    return None if x is None else x.expand(*shape).contiguous()


def instantiate(kernels: Sequence[str], types: Sequence[str] = ("float", "double")) -> str:
    """C++ that instantiates each template kernel for each scalar type (taking a template's
    address instantiates it), for an offline build such as :func:`nvcc_ptx`."""
    refs = ", ".join(f"(void*)&{k}<{t}>" for k in kernels for t in types)
    return f"\n[[maybe_unused]] void* const snnkit_instances[] = {{{refs}}};\n"


def nvcc_ptx(source: str, arch: str, options: Sequence[str] = ()) -> str:
    """Compile ``source`` offline with nvcc for ``arch`` (e.g. ``"sm_90"``), warnings as
    errors, and assemble it with ptxas when that is on PATH; returns the PTX.

    For CI without a GPU: every kernel source is compiled, so a syntax error cannot land.
    Raises :class:`SnnkitError` with the compiler's message (or when nvcc is missing).
    """
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    nvcc = shutil.which("nvcc")
    if nvcc is None:
        raise SnnkitError("nvcc is not on PATH; install the CUDA toolkit to compile kernels")
    with tempfile.TemporaryDirectory() as tmp:
        src, ptx = Path(tmp) / "kernels.cu", Path(tmp) / "kernels.ptx"
        src.write_text(source)
        steps = [
            [
                nvcc,
                "--ptx",
                f"-arch={arch}",
                "--std=c++17",
                *options,
                "-Werror",
                "all-warnings",
                "-o",
                str(ptx),
                str(src),
            ]
        ]
        if shutil.which("ptxas") is not None:  # catches what only the assembler sees
            steps.append(["ptxas", f"-arch={arch}", "-o", str(Path(tmp) / "k.cubin"), str(ptx)])
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise SnnkitError(f"{Path(cmd[0]).name} failed for {arch}: {done.stderr.strip()}")
        return ptx.read_text()
