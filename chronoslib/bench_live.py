"""Live-path benchmark rows: ``predict_live`` p50 / p99 at our default configuration and at the original
release's configuration, side by side (alternating rounds in one process) with a stand-in for that release's
live call; ``predict_batch`` windows per second at 1 and 2 worker threads.

``ReferenceLive`` is written here from ChronosDefrag 0.1.0's published architecture and configuration (not its
code): hidden 128, latent 64, 4 pre-norm residual blocks of two causal k=3 convs (128 -> 256 -> 128, GELU,
sigmoid-gated skip), LayerNorm + latent head + projection head, a registry scan with SPD and top-16, a
context blended from the neighbours' latents, and a 3-layer GLU-recurrent predictor over (context, query)
with a two-layer head. It does that release's per-call work (module calls, ``.eval()`` on both models, the
projection head) so a ratio against it compares like with like; its weights are random (latency does not
depend on them). Knows nothing about the app.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def reference_config() -> Any:
    """Our engine at the original release's sizes: encoder hidden 128, latent 64, 4 layers; predictor 128 x 3;
    top-16 neighbours (2 + 2 epochs: latency does not depend on training)."""
    from .bench_measure import spec_config

    cfg = spec_config()
    cfg.encoder.hidden_dim, cfg.encoder.latent_dim, cfg.encoder.n_layers = 128, 64, 4
    cfg.predictor.hidden_dim, cfg.predictor.n_layers, cfg.routing.top_k = 128, 3, 16
    cfg.optim.encoder_epochs, cfg.optim.predictor_epochs = 2, 2
    return cfg


class _Block(nn.Module):
    def __init__(self, h: int, k: int) -> None:
        super().__init__()
        self.norm, self.pad = nn.LayerNorm(h), k - 1
        self.c1, self.c2 = nn.Conv1d(h, 2 * h, k, bias=False), nn.Conv1d(2 * h, h, k, bias=False)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (1, H, L)
        y = self.norm(x.transpose(1, 2)).transpose(1, 2)
        y = self.c2(F.pad(F.gelu(self.c1(F.pad(y, (self.pad, 0)))), (self.pad, 0)))
        return x + torch.sigmoid(self.gate) * y


class _Cell(nn.Module):
    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        self.norm, self.glu = nn.LayerNorm(d), nn.Linear(d, 2 * h, bias=False)
        self.rec, self.out = nn.Linear(h, 2 * h), nn.Linear(h, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (1, T, D): recurrence over T, residual out
        h, outs = x.new_zeros(x.shape[0], self.rec.in_features), []
        for t in range(x.shape[1]):
            v, g = self.glu(self.norm(x[:, t])).chunk(2, dim=-1)
            f, i = self.rec(v * torch.sigmoid(g)).chunk(2, dim=-1)
            f = torch.sigmoid(f)
            h = f * h + (1 - f) * torch.tanh(i)
            outs.append(self.out(h))
        return x + torch.stack(outs, dim=1)


class ReferenceLive:
    """A stand-in for ChronosDefrag 0.1.0's ``predict_live`` (see the module docstring) over a registry of
    latents (N, 64) with start ticks (N,)."""

    def __init__(self, latents: np.ndarray, ticks: np.ndarray, train_end: int, f: int = 6, h: int = 128,
                 d: int = 64, layers: int = 4, p_hidden: int = 128, p_layers: int = 3, top_k: int = 16) -> None:
        torch.manual_seed(0)
        self.encoder = nn.ModuleDict({"inp": nn.Conv1d(f, h, 1, bias=False),
                                      "blocks": nn.ModuleList(_Block(h, 3) for _ in range(layers)),
                                      "norm": nn.LayerNorm(h), "head": nn.Linear(h, d, bias=False),
                                      "proj": nn.Sequential(nn.Linear(d, d, bias=False), nn.GELU(),
                                                            nn.Linear(d, 32, bias=False))})
        self.predictor = nn.ModuleDict({"norm": nn.LayerNorm(d),
                                        "cells": nn.ModuleList(_Cell(d, p_hidden) for _ in range(p_layers)),
                                        "head": nn.Sequential(nn.LayerNorm(d), nn.Linear(d, p_hidden, bias=False),
                                                              nn.GELU(), nn.Linear(p_hidden, 1))})
        self.registry = torch.from_numpy(np.asarray(latents, dtype=np.float32))
        self.ticks = torch.as_tensor(np.asarray(ticks), dtype=torch.int64)
        self.train_end, self.top_k, self.decay, self.min_conf = int(train_end), top_k, 0.92, 0.05

    def predict_live(self, window: Any) -> tuple[torch.Tensor, float, float]:
        """(alpha (1,), confidence, latency ms) of one window (L, F)."""
        t0 = time.perf_counter()
        e, p = self.encoder, self.predictor
        x = torch.as_tensor(window).to(dtype=torch.float32)
        e.eval()
        p.eval()
        with torch.no_grad():
            h = e["inp"](x.unsqueeze(0).transpose(1, 2).contiguous())            # (1, H, L)
            for blk in e["blocks"]:
                h = blk(h)
            z = F.normalize(e["head"](e["norm"](h.mean(dim=2))), dim=-1)        # (1, D)
            F.normalize(e["proj"](z), dim=-1)                                   # computed per call, unused
            n = self.registry.shape[0]
            sim = torch.mm(z, self.registry.T)                                  # (1, n)
            lag = (self.train_end - self.ticks.float()).abs().clamp(min=0) / (n + 1e-6)
            scores, idx = (sim * (self.decay ** lag).unsqueeze(0)).topk(min(self.top_k, n), dim=-1)
            scores = scores.masked_fill(scores < self.min_conf, 0.0)[0]
            w = scores.clamp(min=0.0)
            ctx = F.normalize((w.unsqueeze(-1) * self.registry[idx[0]]).sum(0) / w.sum().clamp_min(1e-9), dim=0)
            conf = float(w.mean().item())
            s = p["norm"](torch.stack([ctx, z[0]]).unsqueeze(0))                # (1, 2, D)
            for cell in p["cells"]:
                s = cell(s)
            alpha = p["head"](s[:, -1])[0]
        return alpha.cpu(), conf, (time.perf_counter() - t0) * 1e3


def _percentiles(fn: Any, windows: np.ndarray, n_calls: int) -> tuple[float, float]:
    """(p50, p99) wall ms of n_calls calls of fn cycling over windows."""
    s = np.empty(n_calls)
    for i in range(n_calls):
        w = windows[i % len(windows)]
        t0 = time.perf_counter()
        fn(w)
        s[i] = time.perf_counter() - t0
    return float(np.percentile(s, 50) * 1e3), float(np.percentile(s, 99) * 1e3)


def stage_medians(engine: Any, windows: np.ndarray, n_calls: int) -> dict[str, float]:
    """Median of each ``stage_latency_ms`` entry (and of ``system_latency_ms`` as "total") over n_calls calls."""
    got = [engine.predict_live(windows[i % len(windows)]) for i in range(n_calls)]
    out = {k: float(np.median([p.stage_latency_ms[k] for p in got])) for k in got[0].stage_latency_ms}
    out["total"] = float(np.median([p.system_latency_ms for p in got]))
    return out


def bench_live_side_by_side(engine: Any, train: np.ndarray, windows: np.ndarray, n_calls: int = 2000,
                            rounds: int = 5) -> dict[str, Any]:
    """p50 / p99 of our predict_live at the default configuration (``engine``) and at the reference
    configuration (fitted here on ``train``), and of ``ReferenceLive``, in alternating rounds; medians over
    rounds, the load average around each, and our / reference ratios at the reference configuration."""
    from .engine import ChronosDefragEngine

    ours_ref = ChronosDefragEngine(reference_config()).fit(train)
    ref = ReferenceLive(ours_ref.block_latents, ours_ref.block_starts, ours_ref.train_end_tick)
    w = np.asarray(windows, dtype=np.float32)
    calls = {"ours_default": engine.predict_live, "ours_reference_config": ours_ref.predict_live,
             "reference": ref.predict_live}
    for fn in calls.values():          # warm-up excluded, as in the reference benchmark
        for i in range(20):
            fn(w[i % len(w)])
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in calls}
    loads = []
    for _ in range(rounds):
        loads.append(os.getloadavg()[0])
        for name, fn in calls.items():
            got[name].append(_percentiles(fn, w, n_calls))
    out: dict[str, Any] = {name: {"p50_ms": float(np.median([r[0] for r in v])),
                                  "p99_ms": float(np.median([r[1] for r in v]))} for name, v in got.items()}
    for name, eng in (("ours_default", engine), ("ours_reference_config", ours_ref)):
        out[name]["stage_p50_ms"] = stage_medians(eng, w, n_calls)
    for q in ("p50_ms", "p99_ms"):
        out[f"ratio_{q[:3]}_ours_over_reference"] = out["ours_reference_config"][q] / out["reference"][q]
    out.update(rounds=rounds, calls_per_round=n_calls, load_avg_1min=loads,
               kernels={"ours_default": engine._live.kernel, "ours_reference_config": ours_ref._live.kernel},
               reference_config={"hidden": 128, "latent": 64, "encoder_layers": 4, "predictor": "128 x 3",
                                 "top_k": 16, "registry_entries": len(ours_ref.registry)})
    return out


def bench_batch_threads(engine: Any, windows: np.ndarray, n: int = 16_384, runs: int = 3) -> dict[str, Any]:
    """predict_batch windows per second (wall) at 1 and 2 worker threads, alternating, and whether the two
    results are identical."""
    rng = np.random.default_rng(0)
    w = windows[rng.integers(0, len(windows), n)] + 0.01 * rng.standard_normal((n,) + windows.shape[1:])
    w = w.astype(np.float32)
    rates: dict[int, list[float]] = {1: [], 2: []}
    outs = {}
    for _ in range(runs):
        for t in (1, 2):
            t0 = time.perf_counter()
            outs[t] = engine.predict_batch(w, threads=t)
            rates[t].append(n / (time.perf_counter() - t0))
    same = all(np.array_equal(outs[1][k], outs[2][k]) for k in outs[1])
    return {"windows": n, "windows_per_s_1_thread": float(np.median(rates[1])),
            "windows_per_s_2_threads": float(np.median(rates[2])), "identical": bool(same)}


def bench_live_only(quick: bool = False) -> dict[str, Any]:
    """``bench --only live``: the side-by-side rows, predict_batch at 1 and 2 threads and the live-path targets,
    on the default configuration fitted to the reference benchmark's 48 blocks (about a minute)."""
    from .bench_measure import spec_config
    from .engine import ChronosDefragEngine
    from .synthetic import make_regime_series

    s = make_regime_series(64 * 48 + 64 * 64, n_features=6, seed=0)
    train, live = s.data[: 64 * 48], s.data[64 * 48:].reshape(-1, 64, 6)
    engine = ChronosDefragEngine(spec_config()).fit(train)
    side = bench_live_side_by_side(engine, train, live, 500 if quick else 2000, 3 if quick else 7)
    batch = bench_batch_threads(engine, live, 4096 if quick else 16_384, 1 if quick else 3)
    rows = [("predict_live p50 at the default configuration (ms)", side["ours_default"]["p50_ms"], 0.15),
            ("predict_live p50 / reference p50 at its configuration", side["ratio_p50_ours_over_reference"], 0.2),
            ("predict_live p99 / reference p99 at its configuration", side["ratio_p99_ours_over_reference"], 0.2)]
    targets = [{"name": n, "value": v, "target_max": t, "met": bool(v <= t)} for n, v, t in rows]
    targets.append({"name": "predict_batch windows/s at 2 threads", "value": batch["windows_per_s_2_threads"],
                    "target_min": 35_000.0, "met": bool(batch["windows_per_s_2_threads"] >= 35_000.0)})
    return {"side_by_side": side, "batch_threads": batch, "targets": targets}
