"""Straightforward ("plain") implementations that the benchmarks time the fast paths against, in the same process.

They compute the same objective as the library but the way a first implementation of the spec does: one
Python iteration per sample for augmentation and for the InfoNCE rows, and a separate encoder pass over the
clean blocks for the continuity term. Used only by ``chronoslib.bench`` (ratios) and by the tests that check
they agree with the fast versions (so a ratio compares like with like). The all-pairs greedy chain lives in
``chronoslib.timeline.greedy_chain_allpairs``.
"""

from __future__ import annotations

import math

import torch

from .config import DefragConfig
from .encoder import RegimeEncoder
from .losses import latent_continuity_reg, temporal_entropy_reg


def plain_info_nce(p1: torch.Tensor, p2: torch.Tensor, temperature: torch.Tensor | float,
                   ids: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE row by row (same value as ``losses.info_nce``). p1, p2: (B, P) unit projections."""
    b = p1.shape[0]
    total = p1.new_zeros(())
    for a, c in ((p1, p2), (p2, p1)):
        for i in range(b):
            logits = torch.stack([a[i] @ c[j] / temperature for j in range(b)])  # (B,)
            if ids is not None:
                same = (ids == ids[i]) & (torch.arange(b) != i)
                logits = logits.masked_fill(same, -math.inf)
            total = total + (torch.logsumexp(logits, 0) - logits[i])
    return total / (2 * b)


def plain_augment(x: torch.Tensor, jitter_std: float, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Cyclic shift + jitter, one block at a time: (B, L, F) -> (B, L, F)."""
    out = []
    for i in range(x.shape[0]):
        s = int(torch.randint(0, max_shift + 1, (1,), generator=gen))
        v = torch.roll(x[i], -s, dims=0)
        out.append(v + jitter_std * torch.randn(v.shape, generator=gen))
    return torch.stack(out)


def plain_encoder_step(encoder: RegimeEncoder, opt: torch.optim.Optimizer, blocks: torch.Tensor, anchors: torch.Tensor,
                       cfg: DefragConfig, gen: torch.Generator) -> float:
    """One contrastive step on anchors (m,) and their successors, the plain way. Returns the loss."""
    e = cfg.encoder
    max_shift = e.block_len - 1 if e.max_shift < 0 else e.max_shift
    idx = torch.cat([anchors, anchors + 1])
    x = blocks[idx]                                                   # (2m, L, F)
    z1 = encoder(plain_augment(x, e.jitter_std, max_shift, gen))      # one pass per view
    z2 = encoder(plain_augment(x, e.jitter_std, max_shift, gen))
    l_nce = plain_info_nce(encoder.project(z1), encoder.project(z2), encoder.temperature, ids=idx)
    ter = temporal_entropy_reg(z1)[0]
    m = anchors.numel()
    zc = encoder(x)                                                   # a third, redundant pass for LCR
    lcr = sum(latent_continuity_reg(zc[i:i + 1], zc[m + i:m + i + 1]) for i in range(m)) / max(m, 1)
    loss = l_nce + e.entropy_weight * ter + e.continuity_weight * lcr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(encoder.parameters(), cfg.optim.grad_clip)
    opt.step()
    return float(loss.detach())

