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

import torch

from . import metrics
from .config import DefragConfig
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


def anchor_batches(n_blocks: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Shuffled anchors a in [0, N-2], grouped so each batch holds batch_size // 2 pairs (a, a+1).

    A last group with a single anchor is merged into the previous one, so no batch is degenerate.
    """
    anchors = torch.randperm(n_blocks - 1, generator=gen)
    groups = list(anchors.split(max(1, batch_size // 2)))
    if len(groups) > 1 and groups[-1].numel() < 2:
        last = groups.pop()  # pop first: ``groups[-2] = cat(..., groups.pop())`` would index the shortened list
        groups[-1] = torch.cat([groups[-1], last])
    return groups


def encoder_steps(n_blocks: int, batch_size: int) -> int:
    """Optimiser steps in one encoder epoch (the length of ``anchor_batches``)."""
    half = max(1, batch_size // 2)
    groups = -(-(n_blocks - 1) // half)
    last = (n_blocks - 1) - (groups - 1) * half
    return groups - (groups > 1 and last < 2)


def predictor_steps(n_blocks: int, batch_size: int) -> int:
    """Optimiser steps in one predictor epoch (N - 1 windows in batches of max(2, batch_size))."""
    return -(-(n_blocks - 1) // max(2, batch_size))


def train_encoder(encoder: RegimeEncoder, blocks: torch.Tensor, cfg: DefragConfig, gen: torch.Generator,
                  history: list[dict], progress: Progress | None = None) -> None:
    """Contrastive training on blocks (N, L, F), on the encoder's device.

    Every batch is made of chronological pairs (a, a+1) so that LCR sees adjacent blocks *with gradient* in
    the same forward pass as InfoNCE (no extra encoder pass). Two augmented views of every block.
    """
    e, o = cfg.encoder, cfg.optim
    n = blocks.shape[0]
    dev = blocks.device
    opt = torch.optim.AdamW(encoder.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    epochs, _ = planned_epochs(cfg, n)
    reporter = StepReporter("encoder_batch", epochs, encoder_steps(n, o.batch_size), progress)
    encoder.train()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "infonce": 0.0, "ter": 0.0, "lcr": 0.0, "entropy": 0.0, "entropy_target": 0.0}
        seen: list[torch.Tensor] = []
        groups = anchor_batches(n, o.batch_size, gen)
        for step, a in enumerate(groups, 1):
            a = a.to(dev)
            m = a.numel()
            idx = torch.cat([a, a + 1])                                  # (2m,) blocks t and t+1
            x = blocks[idx]                                             # (2m, L, F)
            views = torch.cat([augment(x, e, gen), augment(x, e, gen)])  # (4m, L, F)
            # Mixed precision on a GPU only (bf16 autocast: no loss scaling needed); CPU stays fp32 and exact.
            # The losses (eigvalsh in TER) always run in fp32.
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                z = encoder(views)                                      # (4m, D)
                p = encoder.project(z)                                  # (4m, P)
            z, p = z.float(), p.float()
            z1, z2 = z.chunk(2)
            p1, p2 = p.chunk(2)
            l_nce = info_nce(p1, p2, encoder.temperature, ids=idx)
            ter, ent, target = temporal_entropy_reg(z1)
            lcr = 0.5 * (latent_continuity_reg(z1[:m], z1[m:]) + latent_continuity_reg(z2[:m], z2[m:]))
            loss = l_nce + e.entropy_weight * ter + e.continuity_weight * lcr
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), o.grad_clip)
            opt.step()
            for k, v in (("loss", loss), ("infonce", l_nce), ("ter", ter), ("lcr", lcr), ("entropy", ent)):
                sums[k] += float(v.detach())
            sums["entropy_target"] += target
            seen.append(z1[:m].detach())
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
