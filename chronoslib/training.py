"""Training loops for the encoder (contrastive) and the predictor (pseudo-timeline), and batched encoding.

Each loop fits on one screen with a fixed step order: batch -> forward -> loss -> backward -> clip -> step
-> log. They append one dict per epoch to ``history`` and call ``progress(stage, step, total, metrics)``;
they do no I/O. All randomness comes from the ``torch.Generator`` passed in. Inside an epoch they also report
throttled in-epoch progress (stages "encoder_batch" / "predictor_batch", see ``StepReporter``). How many epochs
each loop runs is ``planned_epochs`` (an explicit count, or one derived from the config's window budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from . import metrics
from .config import DefragConfig
from .distributed import Shard, current_shard
from .encoder import RegimeEncoder, augment
from .losses import info_nce, latent_continuity_reg, temporal_entropy_reg
from .predictor import TemporalPredictor, gather_windows, pseudo_windows

Progress = Callable[[str, int, int, dict], None]

MAX_DERIVED_EPOCHS = (30, 20)   # (encoder, predictor): the most a derived count reaches (small series)
LOSS_KEYS = ("loss", "infonce", "ter", "lcr")   # the running means an in-epoch report carries
REPORT_INTERVAL_S = 0.5         # in-epoch progress: at most one call per this many seconds (+ each epoch's first)


def planned_epochs(cfg: DefragConfig, n_blocks: int) -> tuple[int, int]:
    """(encoder epochs, predictor epochs) a fit on ``n_blocks`` training blocks runs.

    An explicit count (> 0) is used as it is; 0 means derived: ``window_budget // n_blocks`` clamped to
    [1, 30] for the encoder and [1, 20] for the predictor. The 128-block sample keeps 30 / 20 epochs; 15,625
    blocks (1M ticks of 64) get 3 / 3.
    """
    o = cfg.optim
    derived = o.window_budget // max(int(n_blocks), 1)
    enc, pred = (explicit if explicit > 0 else max(1, min(cap, derived))
                 for explicit, cap in zip((o.encoder_epochs, o.predictor_epochs), MAX_DERIVED_EPOCHS))
    return int(enc), int(pred)


class StepReporter:
    """In-epoch progress of one training stage: ``progress(stage, step, steps, metrics)`` on the first step of
    every epoch and then at most once per ``interval`` seconds. metrics: epoch, epochs, the running means of
    this epoch's losses, steps_per_s (over the stage so far) and eta_s (the rest of this stage)."""

    def __init__(self, stage: str, epochs: int, steps: int, progress: Progress | None,
                 interval: float | None = None) -> None:
        self.stage, self.epochs, self.steps, self.progress = stage, epochs, steps, progress
        self.interval = REPORT_INTERVAL_S if interval is None else interval
        self.t0 = time.perf_counter()
        self.last = -float("inf")
        self.done = 0                    # steps finished in this stage, all epochs

    def step(self, epoch: int, step: int, steps: int, sums: dict[str, float], count: int) -> None:
        """Step ``step`` (1-based) of ``steps`` in epoch ``epoch`` (1-based) is done; ``sums`` / ``count`` are
        this epoch's running mean losses (the keys in ``LOSS_KEYS`` that sums has)."""
        self.done += 1
        if self.progress is None:
            return
        now = time.perf_counter()
        if step != 1 and now - self.last < self.interval:
            return
        self.last = now
        rate = self.done / max(now - self.t0, 1e-9)
        left = (steps - step) + (self.epochs - epoch) * self.steps
        m = {"epoch": epoch, "epochs": self.epochs, **{k: sums[k] / count for k in LOSS_KEYS if k in sums},
             "steps_per_s": rate, "eta_s": left / rate}
        self.progress(self.stage, step, steps, m)


def anchor_batches(n_blocks: int, batch_size: int, gen: torch.Generator, min_group: int = 2) -> list[torch.Tensor]:
    """Shuffled anchors a in [0, N-2], grouped so each batch holds batch_size // 2 pairs (a, a+1).

    A last group with fewer than ``min_group`` anchors is merged into the previous one, so no batch is
    degenerate (and with ``min_group`` = world size, every rank of a data-parallel run holds a pair).
    """
    anchors = torch.randperm(n_blocks - 1, generator=gen)
    groups = list(anchors.split(max(1, batch_size // 2)))
    if len(groups) > 1 and groups[-1].numel() < min_group:
        last = groups.pop()  # pop first: ``groups[-2] = cat(..., groups.pop())`` would index the shortened list
        groups[-1] = torch.cat([groups[-1], last])
    return groups


def encoder_steps(n_blocks: int, batch_size: int, min_group: int = 2) -> int:
    """Optimiser steps in one encoder epoch (the length of ``anchor_batches``)."""
    half = max(1, batch_size // 2)
    groups = -(-(n_blocks - 1) // half)
    last = (n_blocks - 1) - (groups - 1) * half
    return groups - (groups > 1 and last < min_group)


def predictor_steps(n_blocks: int, batch_size: int) -> int:
    """Optimiser steps in one predictor epoch (N - 1 windows in batches of max(2, batch_size))."""
    return -(-(n_blocks - 1) // max(2, batch_size))


class ContrastiveHead(torch.nn.Module):
    """The encoder with its projection head as one module (what DistributedDataParallel wraps): views (B, L, F)
    -> (latents (B, D), projections (B, P))."""

    def __init__(self, encoder: RegimeEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(views)
        return z, self.encoder.project(z)


def contrastive_loss(model: torch.nn.Module, temperature: torch.Tensor, views: torch.Tensor, idx: torch.Tensor,
                     cfg: DefragConfig, shard: Shard | None = None, global_pairs: int = 0) -> dict[str, Any]:
    """The encoder objective of one batch. views (4m, L, F): view 1 of blocks idx = [a; a+1] (2m,), then view 2.

    In one process the batch is the global batch. With a ``shard`` it is this rank's slice of a global batch of
    ``global_pairs`` pairs: projections, latents and ids are gathered with gradient, so InfoNCE's negatives and
    TER see the global batch, while LCR stays local. Returns the loss and its parts (tensors), the entropy
    target and this process's anchors' view-1 latents (detached, for the collapse statistics)."""
    e, dev = cfg.encoder, views.device
    m = idx.shape[0] // 2
    # Mixed precision on a GPU only (bf16 autocast: no loss scaling needed); CPU stays fp32 and exact.
    # The losses (eigvalsh in TER) always run in fp32.
    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        z, p = model(views)                                             # (4m, D), (4m, P)
    z, p = z.float(), p.float()
    z1, z2 = z.chunk(2)
    p1, p2 = p.chunk(2)
    g_z1, g_p1, g_p2, g_idx, lcr_w = z1, p1, p2, idx, 1.0
    if shard is not None:
        counts = [2 * c for c in shard.counts(global_pairs)]            # rows of [a; a+1] per rank
        g_z1, g_p1, g_p2, g_idx = (shard.gather(t, counts) for t in (z1, p1, p2, idx))  # (2M, ...) global
        lcr_w = shard.lcr_weight(m, global_pairs)
    # (This order of the three terms keeps one-process training bit-identical to earlier releases.)
    l_nce = info_nce(g_p1, g_p2, temperature, ids=g_idx)
    ter, ent, target = temporal_entropy_reg(g_z1)
    lcr = 0.5 * (latent_continuity_reg(z1[:m], z1[m:]) + latent_continuity_reg(z2[:m], z2[m:]))
    loss = l_nce + e.entropy_weight * ter + e.continuity_weight * (lcr if shard is None else lcr_w * lcr)
    return {"loss": loss, "infonce": l_nce, "ter": ter, "lcr": lcr, "entropy": ent, "entropy_target": target,
            "seen": z1[:m].detach()}


def train_encoder(encoder: RegimeEncoder, blocks: torch.Tensor, cfg: DefragConfig, gen: torch.Generator,
                  history: list[dict], progress: Progress | None = None) -> None:
    """Contrastive training on blocks (N, L, F), on the encoder's device.

    Every batch is made of chronological pairs (a, a+1) so that LCR sees adjacent blocks *with gradient* in
    the same forward pass as InfoNCE (no extra encoder pass). Two augmented views of every block. Inside a
    torch.distributed group of several ranks (``distributed.current_shard``) each rank trains on its share of
    every global batch and the gradients are those of the global batch (see ``chronoslib.distributed``).
    """
    e, o = cfg.encoder, cfg.optim
    n = blocks.shape[0]
    dev = blocks.device
    shard = current_shard(dev)
    model = ContrastiveHead(encoder) if shard is None else shard.wrap(ContrastiveHead(encoder))
    opt = torch.optim.AdamW(encoder.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    epochs, _ = planned_epochs(cfg, n)
    min_group = 2 if shard is None else max(2, shard.world)     # every rank holds at least one pair
    reporter = StepReporter("encoder_batch", epochs, encoder_steps(n, o.batch_size, min_group), progress)
    encoder.train()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        sums = dict.fromkeys(("loss", "infonce", "ter", "lcr", "entropy", "entropy_target"), 0.0)
        seen: list[torch.Tensor] = []
        groups = anchor_batches(n, o.batch_size, gen, min_group)
        for step, a in enumerate(groups, 1):
            a = a.to(dev)
            idx = torch.cat([a, a + 1])                                 # (2M,) blocks t and t+1
            x = blocks[idx]                                             # (2M, L, F)
            v1, v2 = augment(x, e, gen), augment(x, e, gen)             # (2M, L, F) each
            if shard is not None:
                # Every rank draws the views of the whole global batch from the shared generator and keeps
                # its rows: the run sees the one-process views, so its trajectory differs from one process's
                # by rounding only (own draws per rank gave another run, 0.1 ARI apart over three seeds).
                rows = shard.rows(a.numel()).to(dev)
                idx, v1, v2 = idx[rows], v1[rows], v2[rows]
            views = torch.cat([v1, v2])                                 # (4m, L, F)
            out = contrastive_loss(model, encoder.temperature, views, idx, cfg, shard, a.numel())
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), o.grad_clip)
            opt.step()
            for k in sums:
                sums[k] += float(out[k].detach()) if isinstance(out[k], torch.Tensor) else out[k]
            seen.append(out["seen"])
            reporter.step(epoch + 1, step, len(groups), sums, step)
        nb = len(groups)
        rec = {k: v / nb for k, v in sums.items()}
        # Collapse statistics on this epoch's latents (one per anchor), not on a registry.
        stats = metrics.collapse_stats(torch.cat(seen).cpu().numpy())
        rec.update(stage="encoder", epoch=epoch + 1, epochs=epochs, temperature=float(encoder.temperature.detach()),
                   mean_cos=stats["mean_cos"], eff_rank=stats["eff_rank"], verdict=stats["verdict"],
                   collapsed=stats["collapsed"], seconds=time.perf_counter() - t0)
        history.append(rec)
        if progress is not None:
            progress("encoder", epoch + 1, epochs, rec)
    encoder.eval()


@torch.inference_mode()
def encode_blocks(encoder: RegimeEncoder, blocks: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Unit latents of blocks (N, L, F) -> (N, D), in chunks to bound memory."""
    encoder.eval()
    dev = next(encoder.parameters()).device
    outs = [encoder(blocks[i:i + chunk].to(dev)).cpu() for i in range(0, blocks.shape[0], chunk)]
    return torch.cat(outs)


def train_predictor(predictor: TemporalPredictor, z: torch.Tensor, order: torch.Tensor, cfg: DefragConfig,
                    gen: torch.Generator, history: list[dict], progress: Progress | None = None) -> None:
    """Fit the predictor on windows of z (N, D) taken in ``order`` with the next position as target."""
    o, pc = cfg.optim, cfg.predictor
    dev = next(predictor.parameters()).device
    idx, tgt = pseudo_windows(order, pc.window)
    x = gather_windows(z, idx).to(dev)              # (N-1, W, D)
    y = z[tgt, : pc.forecast_dim].to(dev)           # (N-1, forecast_dim)
    opt = torch.optim.AdamW(predictor.parameters(), lr=o.predictor_lr, weight_decay=o.weight_decay)
    _, epochs = planned_epochs(cfg, z.shape[0])
    steps = predictor_steps(z.shape[0], o.batch_size)
    reporter = StepReporter("predictor_batch", epochs, steps, progress)
    predictor.train()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        total, count = 0.0, 0
        batches = torch.randperm(x.shape[0], generator=gen).split(max(2, o.batch_size))
        for step, b in enumerate(batches, 1):
            b = b.to(dev)
            loss = torch.nn.functional.mse_loss(predictor(x[b]), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(predictor.parameters(), o.grad_clip)
            opt.step()
            total += float(loss.detach()) * b.numel()
            count += b.numel()
            reporter.step(epoch + 1, step, len(batches), {"loss": total}, count)
        rec = {"stage": "predictor", "epoch": epoch + 1, "epochs": epochs, "loss": total / max(count, 1),
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        if progress is not None:
            progress("predictor", epoch + 1, epochs, rec)
    predictor.eval()


@torch.inference_mode()
def preceding_states(predictor: TemporalPredictor, z: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """For each block, the predictor state after the W-1 pseudo-timeline positions before it: (N, S).

    Live inference blends these states over a query's neighbours and then steps once with the query.
    """
    n, w = z.shape[0], predictor.cfg.window
    if w <= 1:
        return predictor.zero_state(n)
    pos = torch.arange(n).unsqueeze(1) + torch.arange(-(w - 1), 0).unsqueeze(0)  # (N, W-1) positions
    idx = torch.where(pos >= 0, order[pos.clamp_min(0)], torch.full_like(pos, -1))
    states_by_pos = predictor.run(gather_windows(z, idx))                        # (N, S), row p = position p
    out = torch.empty_like(states_by_pos)
    out[order] = states_by_pos
    return out
