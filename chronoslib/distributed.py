"""Data-parallel encoder training across processes (``torch.distributed``): the process group, each rank's share
of a global batch, gathers that keep the gradient, and the local launcher behind ``train --nproc``.

Under ``torchrun`` (RANK / WORLD_SIZE / MASTER_ADDR in the environment) ``init_from_env`` joins the group: gloo
on CPU, NCCL when the run is on CUDA (one GPU per local rank). ``training.train_encoder`` asks ``current_shard``
whether it runs in a group; if so every rank draws the same global batches (the shuffle generator is seeded
alike), takes a contiguous slice of each batch's (a, a+1) pairs (``Shard.share``), encodes only that slice and
gathers the projections, latents and block ids of the whole global batch *with gradient*
(``torch.distributed.nn.functional.all_gather``): InfoNCE's negatives and the entropy regulariser see the global
batch, LCR stays local (weighted so the ranks' mean is the global mean). Every rank then holds the same global
loss; the gather's backward sums the W identical upstream gradients (a factor W) and DistributedDataParallel
averages over W ranks, so each step's gradient equals the one-process gradient of the same global batch. (A
detached gather with the local slice put back would give 1/W of it.) Every rank draws the augmented views of the
whole global batch from that shared generator and keeps its own rows (``Shard.rows``), so a run of any world size
sees the one-process views and the one-process generator state afterwards: it is reproducible, and it differs
from one process by rounding only. This module knows nothing about the engine, files or events.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


def env_world_size() -> int:
    """WORLD_SIZE as set by torchrun (1 outside it)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def init_from_env(device: str = "auto") -> str:
    """Join the process group torchrun describes; returns the backend ("gloo" or "nccl").

    ``device``: the config's device; "cuda" (or "auto" with CUDA present) uses NCCL and pins this process to
    GPU LOCAL_RANK, anything else gloo."""
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return backend


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def group_info() -> tuple[int, str]:
    """(world size, backend) of the process group this process is in; (1, "none") outside one."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1, "none"
    return dist.get_world_size(), str(dist.get_backend())


@dataclass
class Shard:
    """This process's place in a group of ``world`` ranks training one encoder.

    ``group``: the process group of the batch gathers, apart from the default group DistributedDataParallel
    reduces gradients on: both run collectives during the same backward pass, and separate groups keep their
    queues from interleaving. The module ``wrap`` returns must stay referenced until backward has run (its
    hooks do the averaging)."""

    rank: int
    world: int
    device: torch.device
    group: Any = None

    def share(self, anchors: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch's anchors (sizes differ by at most one)."""
        return anchors.tensor_split(self.world)[self.rank]

    def counts(self, n: int) -> list[int]:
        """Anchors each rank holds of a global batch of ``n`` (the split ``share`` makes)."""
        return [n // self.world + (r < n % self.world) for r in range(self.world)]

    def gather(self, t: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
        """Rows of every rank, rank order, with gradient: (counts[rank], ...) -> (sum(counts), ...).

        Ranks may hold one row more than others: every slice is padded to the largest for the collective and
        the padding dropped after it (its gradient is zero)."""
        import warnings

        from torch.distributed.nn.functional import all_gather

        big = max(counts)
        pad = big - t.shape[0]
        if pad:
            t = torch.cat([t, t.new_zeros((pad, *t.shape[1:]))])
        if not t.is_floating_point():  # block ids carry no gradient
            parts = [torch.empty_like(t) for _ in range(self.world)]
            dist.all_gather(parts, t.contiguous(), group=self.group)
        else:
            with warnings.catch_warnings():  # "deprecated" for the functional collectives; still the documented
                warnings.simplefilter("ignore", FutureWarning)  # gradient-carrying gather in torch 2.x
                parts = list(all_gather(t.contiguous(), group=self.group))
        return torch.cat([p[:c] for p, c in zip(parts, counts)])

    def lcr_weight(self, local_pairs: int, global_pairs: int) -> float:
        """Factor on this rank's local LCR mean so that the ranks' average is the global batch's mean."""
        return local_pairs * self.world / max(global_pairs, 1)

    def rows(self, n: int) -> torch.Tensor:
        """Rows of this rank's pairs in a global batch [a; a+1] of ``n`` anchors: its anchors' positions, then
        their successors' (the rows ``share`` picks, in the layout ``contrastive_loss`` expects)."""
        mine = self.share(torch.arange(n))
        return torch.cat([mine, mine + n])

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` under DistributedDataParallel (gradients averaged over the ranks at each backward)."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)  # no buffers to sync


_GATHER_GROUPS: dict[int, Any] = {}   # one gather group per default group (new_group is itself a collective)


def current_shard(device: torch.device) -> Shard | None:
    """This process's Shard when it is in a process group of more than one rank, else None. Every rank must
    call it at the same point (the first call creates the gather group, a collective)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    key = id(dist.group.WORLD)
    if key not in _GATHER_GROUPS:
        _GATHER_GROUPS[key] = dist.new_group(backend=dist.get_backend())
    return Shard(dist.get_rank(), dist.get_world_size(), device, _GATHER_GROUPS[key])


def launch_local(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m chronoslib <argv>`` as ``nproc`` local ranks under torchrun; their exit status."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
           "-m", "chronoslib", *argv]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # this chronoslib, from any folder
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p))
    return subprocess.call(cmd, env=env)
