"""Data-parallel training with ``torch.distributed``: one run over several processes.

Launch with ``torchrun --nproc-per-node N -m snnkit run ...`` (or ``snnkit run --nproc N``,
which starts the same workers through torch's elastic launcher). Each process reads its
rank from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``) and joins a process group: gloo on CPU, NCCL on CUDA
(each process on the GPU of its local rank).

Semantics: ``--batch-size`` is the *global* batch. Every rank draws the same per-epoch
order of the training set (seeded by the run's seed and the epoch), cuts it into global
batches exactly as a single process would, and trains on its contiguous share of each
batch (:func:`shard`). Each rank's mean loss is weighted by its share, so the gradient
that DDP averages over the ranks is the gradient of the global batch's mean loss: the
learning rate means what it means in a single process, and N processes train the same
trajectory as one process with the same batch size and seed, up to the order of
floating-point sums. Unlike ``torch.utils.data.DistributedSampler`` no sample is repeated
to even out the ranks. Evaluation is split over the ranks and its counts summed.

Only rank 0 writes (results store, checkpoints, ``--json``, progress); on ``--resume``
rank 0 reads the checkpoint and broadcasts it, so only rank 0's node needs the files.
Every collective has a timeout (``SNNKIT_DDP_TIMEOUT`` seconds, default 600): a rank
whose peer died stops with one line instead of hanging.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from snnkit.errors import JobFailed, SnnkitError

__all__ = [
    "SINGLE",
    "World",
    "all_sum",
    "broadcast",
    "differentiable",
    "init",
    "PeerLost",
    "lost_peer",
    "shard",
    "timeout",
    "world_from_env",
    "wrap",
]

DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class World:
    """This process's place in the job: rank among ``size`` processes, and on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """Whether there is more than one process (and so a process group)."""
        return self.size > 1

    @property
    def main(self) -> bool:
        """Whether this process writes (rank 0)."""
        return self.rank == 0


SINGLE = World()


def world_from_env(environ: dict[str, str] | None = None) -> World:
    """The :class:`World` torchrun describes in the environment; :data:`SINGLE` outside it."""
    env = os.environ if environ is None else environ
    try:
        size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise SnnkitError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be integers (torchrun sets them); unset "
            "them to train in one process"
        ) from None
    if size <= 1:
        return SINGLE
    if not 0 <= rank < size:
        raise SnnkitError(f"RANK {rank} is not below WORLD_SIZE {size}; launch with torchrun")
    return World(rank, size, local)


def timeout() -> timedelta:
    """How long a collective may wait for the other ranks (``SNNKIT_DDP_TIMEOUT`` s)."""
    raw = os.environ.get("SNNKIT_DDP_TIMEOUT", "")
    try:
        seconds = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise SnnkitError(f"SNNKIT_DDP_TIMEOUT must be a positive number of seconds, got {raw!r}")
    return timedelta(seconds=seconds)


def init(device: str) -> World:
    """Join the process group torchrun's environment describes (once per process):
    gloo for ``--device cpu``, NCCL for CUDA, with :func:`timeout` on every collective.
    Returns :data:`SINGLE` (and does nothing) outside torchrun."""
    world = world_from_env()
    if not world.active:
        return world
    import torch.distributed as dist

    if dist.is_initialized():
        return world
    cuda = device.startswith("cuda")
    if cuda:
        if device != "cuda":
            raise SnnkitError(
                f"--device {device}: with several processes give --device cuda; each process "
                "takes the GPU of its local rank"
            )
        torch.cuda.set_device(world.local_rank)
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise SnnkitError(
            "WORLD_SIZE is set but MASTER_ADDR/MASTER_PORT are not; launch with torchrun "
            "(or `snnkit run --nproc N`)"
        )
    try:
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout())
    except (RuntimeError, ValueError) as exc:
        raise JobFailed(
            f"rank {world.rank}: cannot join the other {world.size - 1} process(es) at "
            f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} ({_first_line(exc)})"
        ) from None
    return world


def device_of(config_device: str, world: World) -> torch.device:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` for CUDA under DDP."""
    if world.active and config_device.startswith("cuda"):
        return torch.device("cuda", world.local_rank)
    return torch.device(config_device)


def wrap(model: torch.nn.Module, world: World) -> torch.nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` under DDP (its
    backward averages the gradients over the ranks), else ``model`` itself. Inputs are
    passed through untouched (event methods take :class:`snnkit.events.Events`)."""
    if not world.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=None)


def shard(index: torch.Tensor, world: World) -> tuple[torch.Tensor, float]:
    """This rank's contiguous share of the global batch ``index`` and the weight of its
    mean loss, ``len(share) * size / len(index)``: DDP's average of the weighted
    gradients is then the gradient of the global batch's mean loss, also when the batch
    does not divide evenly. A rank left without a sample (a last batch smaller than the
    world) trains on the batch's first sample with weight 0, so it still joins the
    all-reduce."""
    if not world.active:
        return index, 1.0
    mine = index.tensor_split(world.size)[world.rank]
    if len(mine) == 0:
        return index[:1], 0.0
    return mine, len(mine) * world.size / len(index)


def differentiable(loss: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """``loss`` plus zero times every parameter: each rank's backward then reaches every
    parameter (as DDP's all-reduce requires), also when no spike reached this rank's loss
    or a parameter was not used; the gradients' values are unchanged."""
    touched = [p.sum() for p in model.parameters() if p.requires_grad]
    return loss + torch.stack(touched).sum() * 0.0 if touched else loss


def all_sum(values: list[float], world: World, device: torch.device) -> list[float]:
    """``values`` summed over the ranks (float64; on the GPU for NCCL)."""
    if not world.active or not values:
        return list(values)
    import torch.distributed as dist

    where = device if device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=where)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; e.g. a checkpoint's state)."""
    if not world.active:
        return obj
    import torch.distributed as dist

    box = [obj if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class PeerLost(JobFailed):
    """This rank stopped because another one did (its own failure is reported there)."""


def lost_peer(exc: BaseException, world: World) -> PeerLost | None:
    """A collective that failed because another rank died or timed out, as one line;
    None for any other exception."""
    if not world.active:
        return None
    import torch.distributed as dist

    if not isinstance(exc, (dist.DistError, RuntimeError)):
        return None
    text = str(exc).lower()
    signs = ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "broken pipe")
    if not isinstance(exc, dist.DistError) and not any(s in text for s in signs):
        return None
    return PeerLost(
        f"rank {world.rank}: another process of this {world.size}-process job stopped or "
        f"stopped answering ({_first_line(exc)}); its own message says why"
    )


def destroy() -> None:
    """Leave the process group (if one was joined)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _first_line(exc: BaseException) -> str:
    """The gist of a backend error: its first sentence, without gloo's source location."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    if line.startswith("[") and "] " in line:  # "[.../pair.cc:537] Read error ..."
        line = line.split("] ", 1)[1]
    return line.split(". ", 1)[0][:200]
