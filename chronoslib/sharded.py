"""A registry split across processes: each rank holds a contiguous slice of the entries (oldest to newest) and a
query is answered by a local SPD top-k on every shard, gathered (``torch.distributed``, any backend: gloo on
CPU) and merged into the global top-k and its SPD-weighted neighbourhood, equal to the unsharded answer.

* ``shard_state``: the slice of a ``Registry.state_dict`` one rank holds, and its first global slot.
* ``load_shard``: that slice read from a saved checkpoint through a memory map (only the slice is copied);
  ``load_engine_shard``: the saved engine with that slice as its (sharded) registry.
* ``ShardedRegistry``: ``route(q, t, k)`` and ``len()`` like ``registry.Registry``, so an engine whose
  ``registry`` is one answers ``predict_batch`` from all shards (every rank calls it with the same windows:
  ``route`` is a collective).
* ``merge_top_k``: the merge of per-shard top-k lists (no communication).

Equal to the unsharded registry where the shards answer exactly (below their ``index_threshold``); above it
each shard answers through its own index. Knows nothing about encoders; of the engine only how to load one
around a shard. The shards are read-only (online appends go to an unsharded registry).
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import torch
import torch.distributed as dist

from .errors import DataError
from .registry import Registry, Route, blend

_SLICED = ("latents", "ticks", "ids", "states", "log_weights")


def shard_state(state: dict[str, Any], rank: int, world: int) -> tuple[dict[str, Any], int]:
    """Rows [rank * N / world, (rank + 1) * N / world) of a registry state dict (oldest to newest), as a state
    dict of their own, and the global slot of its first row (slots of the unsharded registry loaded from
    ``state``: 0 = oldest)."""
    if not (isinstance(world, int) and world >= 1 and isinstance(rank, int) and 0 <= rank < world):
        raise DataError(f"shard rank must be in [0, world) with world >= 1, got rank {rank!r} of {world!r}")
    n = int(state["latents"].shape[0])
    a, b = rank * n // world, (rank + 1) * n // world
    part = {key: (v[a:b].clone() if key in _SLICED else v) for key, v in state.items()}
    part["capacity"] = max(b - a, 1)
    return part, a


def _mapped_registry(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any], float]:
    """(checkpoint dict, its registry state, span of the whole registry in ticks), memory-mapped: tensors are
    read from the file only where they are used."""
    data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    state = data.get("registry") if isinstance(data, dict) else None
    if not isinstance(state, dict) or "ticks" not in state or "block_len" not in state:
        raise DataError(f"{path}: no registry in this checkpoint (expected a 'registry' entry with ticks)")
    t = state["ticks"]
    span = max(float(t.max() - t.min()) + int(state["block_len"]), 1.0) if t.numel() else 1.0
    return data, state, span


def load_shard(path: str | os.PathLike, rank: int, world: int) -> tuple[Registry, int, float]:
    """This rank's slice of the registry saved in checkpoint ``path``: (local registry, first global slot, span
    of the whole registry in ticks). The file is memory-mapped, so only the slice is read into memory."""
    _, state, span = _mapped_registry(path)
    part, first = shard_state(state, rank, world)
    return Registry.from_state_dict(part), first, span


def load_engine_shard(path: str | os.PathLike, rank: int, world: int, group: Any = None) -> Any:
    """The engine saved at ``path`` with this rank's shard as its registry (a ``ShardedRegistry``; collective:
    every rank of ``group`` calls this). The whole registry is never built here: the checkpoint is memory-mapped
    and the engine is restored, with every field checked as in ``ChronosDefragEngine.load``, from the checkpoint
    with only this rank's slice in it. For ``predict_batch``; ``predict_live`` needs an unsharded registry."""
    from .checkpoint import checkpoint_bytes
    from .engine import ChronosDefragEngine

    data, state, span = _mapped_registry(path)
    part, first = shard_state(state, rank, world)
    payload = {key: v for key, v in data.items() if key not in ("format", "format_version", "registry")}
    eng = ChronosDefragEngine.load(checkpoint_bytes({**payload, "registry": part}))
    eng.registry = ShardedRegistry(eng.registry, first, group, span)
    return eng


def _fingerprint(q: torch.Tensor, t_query: float, k: int) -> float:
    """52 bits of a hash of the query batch, exact in float64: equal on every rank iff they route the same."""
    h = hashlib.blake2b(q.detach().contiguous().float().numpy().tobytes(), digest_size=8)
    h.update(repr((float(t_query), int(k), tuple(q.shape))).encode())
    return float(int.from_bytes(h.digest(), "little") >> 12)


def merge_top_k(parts: torch.Tensor, k: int, state_dim: int) -> Route:
    """Global top-k from per-shard lists packed as (W, M, k_s, 6 + S) float64 rows (score, cosine, tick, global
    slot, block id, query fingerprint, state...; -inf scores pad shards with fewer than k_s entries), and the SPD
    neighbourhood
    blended from them (``registry.blend``), as the unsharded ``Registry.route`` would return it."""
    w, m, ks, _ = parts.shape
    flat = parts.permute(1, 0, 2, 3).reshape(m, w * ks, -1)              # (M, W * k_s, 6 + S)
    top, j = torch.topk(flat[..., 0], k, dim=1)                          # (M, k) descending
    best = flat.gather(1, j[..., None].expand(m, k, flat.shape[-1]))     # (M, k, 6 + S)
    scores, cosines = top.float(), best[..., 1].float()
    states = best[..., 6:6 + state_dim].float()                          # (M, k, S)
    weights, state, confidence = blend(scores, cosines, states)
    return Route(ids=best[..., 4].long(), weights=weights, state=state, confidence=confidence, scores=scores,
                 cosines=cosines, ticks=best[..., 2], slots=best[..., 3].long(), scored_at=0.0)


class ShardedRegistry:
    """This rank's shard of a registry in a ``torch.distributed`` group; queries are collective."""

    collective = True   # callers route one batch at a time, in the same order on every rank (predict_batch does)

    def __init__(self, local: Registry, first_slot: int, group: Any = None, span: float | None = None) -> None:
        """``local``: this rank's entries (``shard_state`` / ``load_shard``); ``first_slot``: the global slot of
        its first row; ``span``: ticks the whole registry covers (None: gathered from the shards now, a
        collective)."""
        if not dist.is_initialized():
            raise DataError("ShardedRegistry needs torch.distributed initialised (dist.init_process_group)")
        self.local, self.first_slot, self.group = local, int(first_slot), group
        self.dim, self.state_dim, self.block_len = local.dim, local.state_dim, local.block_len
        self.world = dist.get_world_size(group)
        self._lock = threading.Lock()   # one collective at a time from this process
        self.count = int(self._all_reduce(torch.tensor([float(local.count)]), dist.ReduceOp.SUM)[0])
        local.pin_span(self._global_span() if span is None else float(span))

    def _all_reduce(self, t: torch.Tensor, op: Any) -> torch.Tensor:
        dist.all_reduce(t, op=op, group=self.group)
        return t

    def _global_span(self) -> float:
        """newest start + block_len - oldest start over every shard (>= 1), like ``Registry.span``."""
        t = self.local.ticks[: self.local.count]
        lo = torch.tensor([float(t.min()) if t.numel() else float("inf")], dtype=torch.float64)
        hi = torch.tensor([float(t.max()) if t.numel() else float("-inf")], dtype=torch.float64)
        lo, hi = self._all_reduce(lo, dist.ReduceOp.MIN), self._all_reduce(hi, dist.ReduceOp.MAX)
        return max(float(hi[0] - lo[0]) + self.block_len, 1.0)

    def __len__(self) -> int:
        return self.count

    def route(self, q: torch.Tensor, t_query: float, k: int, leave_out: torch.Tensor | None = None) -> Route:
        """``Registry.route`` over every shard's entries: each rank's local top-k (scored with the whole
        registry's span), all gathered, merged (``merge_top_k``). Every rank must call it with the same q (M, D)
        and gets the same Route; slots are global (0 = the oldest entry of the whole registry)."""
        if leave_out is not None:
            raise DataError("a sharded registry does not take leave_out (route an unsharded registry for that)")
        q = q.reshape(-1, self.dim) if q.dim() != 2 else q
        k = min(int(k), self.count)
        mine = self._local_top(q, t_query, k)                                 # (M, k, 6 + S)
        mine[..., 5] = _fingerprint(q, t_query, k)
        parts = [torch.empty_like(mine) for _ in range(self.world)]
        with self._lock:
            dist.all_gather(parts, mine, group=self.group)
        gathered = torch.stack(parts)                                          # (W, M, k, 6 + S)
        if not bool((gathered[..., 5] == mine[0, 0, 5]).all()):
            raise DataError("the ranks routed different queries: every rank must route the same windows, one batch "
                            "at a time and in the same order (predict_batch does this for a sharded registry)")
        return merge_top_k(gathered, k, self.state_dim)

    def _local_top(self, q: torch.Tensor, t_query: float, k: int) -> torch.Tensor:
        """This shard's top-k packed for the gather, (M, k, 6 + S) float64 (channel 5: the query's fingerprint,
        set by ``route``); -inf score rows pad a shard with fewer than k entries."""
        m = q.shape[0]
        out = torch.full((m, k, 6 + self.state_dim), 0.0, dtype=torch.float64)
        out[..., 0] = -float("inf")
        kl = min(k, self.local.count)
        if kl == 0:
            return out
        r = self.local.route(q, t_query, kl)
        out[:, :kl, 0], out[:, :kl, 1], out[:, :kl, 2] = r.scores.double(), r.cosines.double(), r.ticks
        out[:, :kl, 3] = (self._global_slots(r.slots)).double()
        out[:, :kl, 4] = r.ids.double()
        out[:, :kl, 6:] = self.local.states[r.slots].double()
        return out

    def _global_slots(self, slots: torch.Tensor) -> torch.Tensor:
        """Local buffer slots -> global slots (position oldest to newest in the whole registry)."""
        local = self.local
        age = (slots - local.head) % local.capacity if local.count == local.capacity else slots
        return age + self.first_slot
