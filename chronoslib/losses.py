"""Training objectives as pure functions of tensors: InfoNCE, TER, LCR.

Nothing here holds state or knows about the encoder; each function documents its shapes and returns a
scalar tensor that carries gradient to its inputs.

TER deviates from the spec's letter (see docs/deviations.md; ``tests/test_losses.py`` computes the literal
statistic): the spec's row-softmax entropy of raw cosines is always above its target (the hinge never acts) and
is *maximal* for a collapsed batch. We use the spectral entropy of the batch's latents instead, which is 0 for a
collapsed batch and log(min(B, D)) for an isotropic one, with the hinge ``max(0, 0.5 * log(min(B, D)) - H)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def info_nce(p1: torch.Tensor, p2: torch.Tensor, temperature: torch.Tensor | float,
             ids: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE between two views.

    p1, p2: (B, P) unit projections; row i of p1 and row i of p2 are the positive pair.
    ids: optional (B,) block ids; off-diagonal pairs with the same id (the same block drawn twice) are
    removed from the negatives instead of being pushed apart.
    Returns the mean of the two cross-entropies (p1 -> p2 and p2 -> p1). A batch of 1 gives 0, not NaN.
    """
    b = p1.shape[0]
    logits = p1 @ p2.T / temperature  # (B, B)
    if ids is not None:
        same = (ids.unsqueeze(0) == ids.unsqueeze(1)) & ~torch.eye(b, dtype=torch.bool, device=p1.device)
        logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(b, device=p1.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def spectral_entropy(z: torch.Tensor) -> torch.Tensor:
    """Entropy of the eigenvalue distribution of the batch's second-moment matrix.

    z: (B, D) unit vectors. C = z^T z / B has trace 1, so its eigenvalues p_k form a distribution;
    H = -sum p_k log p_k is 0 when every row is the same vector and log(min(B, D)) when the batch spreads
    evenly over min(B, D) directions. exp(H) is the effective rank.
    """
    b = z.shape[0]
    # The Gram matrix (B, B) and C (D, D) share non-zero eigenvalues; use the smaller one.
    m = (z @ z.T) if b <= z.shape[1] else (z.T @ z)
    ev = torch.linalg.eigvalsh(m / b).clamp_min(0)
    p = ev / ev.sum().clamp_min(1e-12)
    return -(p * torch.log(p.clamp_min(1e-12))).sum()


def entropy_target(batch_size: int, dim: int) -> float:
    """Adaptive TER target: half the entropy of a batch spread evenly over min(B, D) directions."""
    return 0.5 * math.log(max(min(batch_size, dim), 2))


def temporal_entropy_reg(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Temporal Entropy Regularisation (unweighted): hinge on the batch entropy falling below its target.

    z: (B, D) unit latents. Returns (penalty, entropy, target); penalty = max(0, target - H) >= 0.
    """
    h = spectral_entropy(z)
    target = entropy_target(z.shape[0], z.shape[1])
    return torch.clamp(target - h, min=0.0), h, target


def latent_continuity_reg(z_prev: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
    """Latent Continuity Regularisation (unweighted): mean squared L2 jump between chronological neighbours.

    z_prev, z_next: (M, D) latents of blocks t and t+1 (with gradient). Returns mean_i ||z_next - z_prev||^2.
    """
    if z_prev.shape[0] == 0:
        return z_prev.sum() * 0.0
    return (z_next - z_prev).pow(2).sum(dim=1).mean()
