"""The checkpoint dict of an engine's parts, and the field-by-field way back from it.

``checkpoint_payload(parts)`` is the dict a checkpoint stores (config, weights, registry, normaliser, block
arrays, history). ``build_parts(data)`` checks type, shape, dtype, finiteness, range and mutual consistency of
every field of such a dict (as returned by ``checkpoint.read_checkpoint``) and returns the rebuilt parts; it raises
only ``CheckpointError`` naming the field with what was expected and what was got. Nothing is allocated beyond
what the file holds (see ``registry.LOAD_SPARE_SLOTS``). ``check_architecture`` refuses a checkpoint whose
architecture differs from a given config. Knows nothing about how the engine uses the parts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .config import DefragConfig
from .encoder import RegimeEncoder
from .errors import CheckpointError
from .predictor import TemporalPredictor
from .registry import Registry
from .scaling import Normaliser


def _fail(field: str, expected: str, got: Any) -> CheckpointError:
    g = got if isinstance(got, str) else f"{type(got).__name__} {got!r:.80}"
    return CheckpointError(f"checkpoint field '{field}': expected {expected}, got {g}")


def _int(field: str, v: Any, lo: int = 0, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
        raise _fail(field, f"an integer in [{lo}, {hi if hi is not None else 'inf'}]", v)
    return int(v)


def _tensor(field: str, v: Any, shape: tuple[int | None, ...], kind: str) -> torch.Tensor:
    """``kind``: 'float' (finite floating point) or 'int' (integer dtype)."""
    if not isinstance(v, torch.Tensor):
        raise _fail(field, f"a tensor of shape {shape}", v)
    if v.ndim != len(shape) or any(s is not None and s != g for s, g in zip(shape, v.shape)):
        raise _fail(field, f"shape {tuple('any' if s is None else s for s in shape)}", f"shape {tuple(v.shape)}")
    if kind == "float":
        if not v.is_floating_point():
            raise _fail(field, "a floating-point tensor", f"dtype {v.dtype}")
        if v.numel() and not bool(torch.isfinite(v).all()):
            raise _fail(field, "finite values", "NaN or inf")
    elif v.is_floating_point() or v.is_complex() or v.dtype == torch.bool:
        raise _fail(field, "an integer tensor", f"dtype {v.dtype}")
    return v


def _module(field: str, module: torch.nn.Module, sd: Any) -> torch.nn.Module:
    if not isinstance(sd, dict) or not all(isinstance(t, torch.Tensor) for t in sd.values()):
        raise _fail(field, "a dict of tensors (a state_dict)", sd)
    for k, t in sd.items():
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            raise _fail(f"{field}.{k}", "finite weights", "NaN or inf")
    try:
        module.load_state_dict(sd)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint field '{field}' does not fit its own config: "
                              f"{str(exc).splitlines()[0][:300]}") from None
    return module.eval()


def _normaliser(d: Any, n_features: int) -> Normaliser:
    if not isinstance(d, dict):
        raise _fail("normaliser", "a dict", d)
    if d.get("method") not in ("zscore", "robust", "none"):
        raise _fail("normaliser.method", "zscore | robust | none", d.get("method"))
    vals = {}
    for key in ("centre", "scale"):
        v = d.get(key)
        if not isinstance(v, (list, tuple)) or len(v) != n_features or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
            raise _fail(f"normaliser.{key}", f"a list of {n_features} finite numbers", v)
        vals[key] = v
    if not all(x > 0 for x in vals["scale"]):
        raise _fail("normaliser.scale", "values > 0", vals["scale"])
    return Normaliser.from_dict(d)


def _registry(d: Any, cfg: DefragConfig, state_dim: int, n_blocks: int) -> Registry:
    if not isinstance(d, dict):
        raise _fail("registry", "a dict", d)
    for key in ("capacity", "dim", "state_dim", "block_len", "decay", "latents", "ticks", "ids", "states"):
        if key not in d:
            raise _fail(f"registry.{key}", "present", "missing")
    dim = _int("registry.dim", d["dim"], cfg.encoder.latent_dim, cfg.encoder.latent_dim)
    sdim = _int("registry.state_dim", d["state_dim"], state_dim, state_dim)
    block_len = _int("registry.block_len", d["block_len"], 1, 10**9)
    decay = d["decay"]
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not (0 < decay <= 1):
        raise _fail("registry.decay", "a number in (0, 1]", decay)
    latents = _tensor("registry.latents", d["latents"], (None, dim), "float")
    n = latents.shape[0]
    capacity = _int("registry.capacity", d["capacity"], max(n, 1), 2**40)
    ticks = _tensor("registry.ticks", d["ticks"], (n,), "float" if d["ticks"].is_floating_point() else "int") \
        if isinstance(d["ticks"], torch.Tensor) else _tensor("registry.ticks", d["ticks"], (n,), "float")
    ids = _tensor("registry.ids", d["ids"], (n,), "int")
    if n and (int(ids.min()) < -1 or int(ids.max()) >= n_blocks):
        raise _fail("registry.ids", f"block ids in [-1, {n_blocks})", f"range [{int(ids.min())}, {int(ids.max())}]")
    states = _tensor("registry.states", d["states"], (n, sdim), "float")
    log_w = None
    if "log_weights" in d:
        log_w = _tensor("registry.log_weights", d["log_weights"], (n,), "float")
        if n and float(log_w.max()) > 0:
            raise _fail("registry.log_weights", "values <= 0 (weights in (0, 1])", f"max {float(log_w.max())}")
    for k, lo in (("index_threshold", 1), ("index_nprobe", 1), ("index_cells", 0)):
        if k in d:
            _int(f"registry.{k}", d[k], lo, 2**31)
    # The engine routes with its config's index settings (saved ones are only checked). A saved registry has
    # capacity >= its rows (preallocated at fit time); from_state_dict allocates at most max(n, LOAD_SPARE_SLOTS)
    # slots (beyond that the registry evicts its oldest entry), so a small file can never allocate gigabytes.
    r = cfg.routing
    return Registry.from_state_dict({
        "capacity": capacity, "dim": dim, "state_dim": sdim, "block_len": block_len, "decay": float(decay),
        "latents": latents, "ticks": ticks.to(torch.float64), "ids": ids, "states": states,
        **({} if log_w is None else {"log_weights": log_w}),
        "index_threshold": r.index_threshold, "index_nprobe": r.index_nprobe, "index_cells": r.index_cells})


def build_parts(data: dict[str, Any]) -> dict[str, Any]:
    """Check every field of ``data`` and return the engine's attributes rebuilt from it (nothing shared)."""
    for key in ("config", "encoder", "predictor", "registry", "normaliser", "block_latents", "block_starts",
                "pseudo_timeline"):
        if key not in data:
            raise _fail(key, "present", "missing")
    try:
        cfg = DefragConfig.from_dict(data["config"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint field 'config': {exc}") from None
    encoder = _module("encoder", RegimeEncoder(cfg.encoder), data["encoder"])
    predictor = _module("predictor", TemporalPredictor(cfg.predictor, cfg.encoder.latent_dim), data["predictor"])
    normaliser = _normaliser(data["normaliser"], cfg.encoder.input_dim)
    latents = _tensor("block_latents", data["block_latents"], (None, cfg.encoder.latent_dim), "float")
    n = latents.shape[0]
    if n < 1:
        raise _fail("block_latents", "at least one block", "0 rows")
    starts = _tensor("block_starts", data["block_starts"], (n,), "int")
    if n > 1 and not bool((starts[1:] > starts[:-1]).all()):
        raise _fail("block_starts", "strictly increasing ticks", "a decrease or repeat")
    if int(starts[0]) < 0:
        raise _fail("block_starts", "ticks >= 0", int(starts[0]))
    order = _tensor("pseudo_timeline", data["pseudo_timeline"], (n,), "int")
    if not np.array_equal(np.sort(order.numpy()), np.arange(n)) or int(order[0]) != 0:
        raise _fail("pseudo_timeline", f"a permutation of 0..{n - 1} starting at 0", "something else")
    end = data.get("train_end_tick", 0)
    min_end = int(starts[-1]) + cfg.encoder.block_len
    end = _int("train_end_tick", end, min_end, 2**62)
    registry = _registry(data["registry"], cfg, predictor.state_dim, n)
    trained = registry.ids[: registry.count] >= 0
    if bool(trained.any()) and float(registry.ticks[: registry.count][trained].max()) >= end:
        raise _fail("registry.ticks", f"training entries before train_end_tick={end}", "a tick at or after it")
    history = data.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise _fail("history", "a list of dicts", history)
    for key in ("fit_summary", "meta"):
        if not isinstance(data.get(key, {}), dict):
            raise _fail(key, "a dict", data.get(key))
    return {"cfg": cfg, "encoder": encoder, "predictor": predictor, "registry": registry, "normaliser": normaliser,
            "block_latents": latents.detach().clone().numpy(), "block_starts": starts.clone().numpy(),
            "pseudo_timeline": order.clone().numpy(), "history": [dict(h) for h in history],
            "fit_summary": dict(data.get("fit_summary", {})), "meta": dict(data.get("meta", {})),
            "train_end_tick": end}


def checkpoint_payload(parts: Any) -> dict[str, Any]:
    """The checkpoint dict of a fitted engine's parts (``parts`` has the attributes ``build_parts`` returns)."""
    return {
        "config": parts.cfg.to_dict(),
        "encoder": parts.encoder.state_dict(), "predictor": parts.predictor.state_dict(),
        "registry": parts.registry.state_dict(), "normaliser": parts.normaliser.to_dict(),
        "block_latents": torch.from_numpy(parts.block_latents),
        "block_starts": torch.from_numpy(parts.block_starts),
        "pseudo_timeline": torch.from_numpy(parts.pseudo_timeline),
        "history": parts.history, "fit_summary": parts.fit_summary, "meta": parts.meta,
        "train_end_tick": parts.train_end_tick,
    }


def check_architecture(cfg: DefragConfig, data: dict[str, Any]) -> None:
    """Refuse checkpoint ``data`` whose architecture (``DefragConfig.architecture``) differs from ``cfg``'s, with a
    ``CheckpointError`` listing every difference."""
    try:
        theirs = DefragConfig.from_dict(data["config"]).architecture()
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint field 'config' is unreadable: {exc}") from None
    mine = cfg.architecture()
    diff = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
    if diff:
        raise CheckpointError("checkpoint is incompatible with this engine's config: " + ", ".join(
            f"{k} is {a} here but {b} in the checkpoint" for k, (a, b) in diff.items()))
