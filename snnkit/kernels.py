"""CuPy plumbing shared by the plugins' CUDA kernels: compile once, launch on torch tensors.

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
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch

from snnkit.errors import SnnkitError

__all__ = [
    "Kernel",
    "compile_kernel",
    "ctype",
    "cupy_available",
    "instantiate",
    "launch",
    "nvcc_ptx",
    "read_source",
]

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
