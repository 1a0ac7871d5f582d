"""The regime encoder: causal Conv1D residual stack -> temporal mean pool -> L2-normalised latent.

Owns the network (``CausalConv1d``, ``RegimeEncoder``) and the two augmentations used to make contrastive
pairs (Gaussian jitter, cyclic time shift), both vectorised over the batch and driven by an explicit
``torch.Generator``. Knows nothing about losses, routing or training loops.
Shapes: B blocks, L ticks, F features, H hidden channels, D latent dim, P projection dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig


class CausalConv1d(nn.Conv1d):
    """Conv1d whose output at tick t sees only ticks <= t: all padding is on the left."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__(in_ch, out_ch, kernel_size, dilation=dilation, padding=0)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, C', L)
        xp = F.pad(x, (self.left_pad, 0))
        d, k = self.dilation[0], self.kernel_size[0]
        if d > 1 and x.shape[0] <= 4:
            # A few windows (e.g. a short last chunk of predict_batch): oneDNN's dilated conv costs ~55 us for one
            # window on CPU; the same maths as one matmul over k shifted views (im2col) ~24 us (tested equal).
            length = x.shape[2]
            cols = torch.stack([xp[:, :, j * d: j * d + length] for j in range(k)], dim=2)  # (B, C, k, L)
            out = torch.matmul(self.weight.reshape(self.out_channels, -1), cols.flatten(1, 2))  # (B, C', L)
            return out if self.bias is None else out + self.bias.unsqueeze(1)
        return F.conv1d(xp, self.weight, self.bias, dilation=d)


class _ResidualBlock(nn.Module):
    def __init__(self, ch: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = CausalConv1d(ch, ch, kernel_size, dilation)
        self.conv2 = CausalConv1d(ch, ch, kernel_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, L)
        return x + self.conv2(F.gelu(self.conv1(x)))


class RegimeEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        h = cfg.hidden_dim
        self.cfg = cfg
        self.in_proj = CausalConv1d(cfg.input_dim, h, 1)
        self.blocks = nn.ModuleList(
            _ResidualBlock(h, cfg.kernel_size, 2 ** i) for i in range(cfg.n_layers)
        )
        self.latent_head = nn.Linear(h, cfg.latent_dim)
        self.proj_head = nn.Sequential(nn.Linear(cfg.latent_dim, h), nn.ReLU(), nn.Linear(h, cfg.proj_dim))
        # Stored as a log so the exponentiated temperature can never go negative.
        self.log_temperature = nn.Parameter(
            torch.tensor(math.log(cfg.temperature)), requires_grad=cfg.learn_temperature
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def temperature(self) -> torch.Tensor:
        # Clamped so a runaway learnable temperature cannot blow up the logits.
        return self.log_temperature.exp().clamp(0.01, 10.0)

    def sequence_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-tick features (B, L, F) -> (B, H, L); column t depends on ticks <= t only."""
        h = F.gelu(self.in_proj(x.transpose(1, 2)))
        for blk in self.blocks:
            h = blk(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, F) -> unit latents (B, D)."""
        pooled = self.sequence_features(x).mean(dim=2)  # (B, H): temporal mean pooling
        return F.normalize(self.latent_head(pooled), dim=1)

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Unit latents (B, D) -> unit projections (B, P) for InfoNCE."""
        return F.normalize(self.proj_head(z), dim=1)


def jitter(x: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    """Add N(0, std^2) noise: (B, L, F) -> (B, L, F)."""
    if std <= 0:
        return x
    # Drawn where the generator lives (the training generator is a CPU one), then moved: a CUDA batch gets the
    # same noise as a CPU one, and torch refuses a CPU generator for a CUDA draw.
    return x + std * torch.randn(x.shape, generator=gen, device=gen.device, dtype=x.dtype).to(x.device)


def cyclic_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Roll each block by its own random shift in [0, max_shift] along time, in one gather: (B, L, F)."""
    b, length, f = x.shape
    if max_shift <= 0:
        return x
    shifts = torch.randint(0, max_shift + 1, (b, 1), generator=gen, device=gen.device).to(x.device)
    idx = (torch.arange(length, device=x.device).unsqueeze(0) + shifts) % length  # (B, L)
    return x.gather(1, idx.unsqueeze(-1).expand(b, length, f))


def augment(x: torch.Tensor, cfg: EncoderConfig, gen: torch.Generator) -> torch.Tensor:
    """One random view of every block: cyclic shift then jitter, (B, L, F) -> (B, L, F)."""
    max_shift = cfg.block_len - 1 if cfg.max_shift < 0 else cfg.max_shift
    return jitter(cyclic_shift(x, max_shift, gen), cfg.jitter_std, gen)
