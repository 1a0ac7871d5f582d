"""TemporalPredictor: a small gated GLU recurrence over latents taken in pseudo-timeline order.

Each layer keeps a hidden state h and, per step, mixes input x_t and h_{t-1} through a GLU candidate and an
update gate:  c = GLU(W_c [x_t, h]),  g = sigmoid(W_g [x_t, h]),  h <- (1 - g) * h + g * c.
The head reads the top layer's state and predicts the first ``forecast_dim`` coordinates of the *next*
pseudo-timeline latent (self-supervised; no prices or returns are used).

The state is exposed (``run`` / ``step``) because live inference blends the states that precede a query's
registry neighbours and then takes a single step with the query latent, which keeps ``predict_live`` cheap.
Also owns the construction of training windows from a permutation (``pseudo_windows``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import PredictorConfig


class _GatedCell(nn.Module):
    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        # One matmul gives the GLU's value and gate and the update gate: (in + H) -> 3H.
        self.lin = nn.Linear(in_dim + hidden, 3 * hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:  # (M, in), (M, H) -> (M, H)
        a, b, g = self.lin(torch.cat([x, h], dim=1)).chunk(3, dim=1)
        c = torch.tanh(a) * torch.sigmoid(b)  # GLU candidate (tanh keeps the state bounded)
        g = torch.sigmoid(g)
        return h + g * (c - h)


class TemporalPredictor(nn.Module):
    def __init__(self, cfg: PredictorConfig, latent_dim: int) -> None:
        """``latent_dim`` (D) is the encoder's: the size of every input latent (``encoder.latent_dim``)."""
        super().__init__()
        self.cfg = cfg
        dims = [latent_dim] + [cfg.hidden_dim] * (cfg.n_layers - 1)
        self.cells = nn.ModuleList(_GatedCell(d, cfg.hidden_dim) for d in dims)
        self.head = nn.Linear(cfg.hidden_dim, cfg.forecast_dim)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def state_dim(self) -> int:
        return self.cfg.n_layers * self.cfg.hidden_dim

    def zero_state(self, m: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(m, self.state_dim, device=device)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """One recurrence step for all layers: x (M, D), state (M, n_layers * H) -> new state."""
        hs = state.chunk(len(self.cells), dim=1)
        out = []
        inp = x
        for cell, h in zip(self.cells, hs):
            inp = cell(inp, h)
            out.append(inp)
        return torch.cat(out, dim=1)

    def run(self, seq: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """Consume seq (M, W, D) from ``state`` (zeros if None); returns the final state (M, S)."""
        st = self.zero_state(seq.shape[0], seq.device) if state is None else state
        for t in range(seq.shape[1]):
            st = self.step(seq[:, t], st)
        return st

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        """State (M, S) -> forecast of the next latent's leading coordinates (M, forecast_dim)."""
        return self.head(state[:, -self.cfg.hidden_dim:])

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """(M, W, D) windows -> (M, forecast_dim) forecasts."""
        return self.readout(self.run(seq))


def pseudo_windows(order: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training windows along a permutation.

    For every position i in 0..N-2: the block indices at positions i-W+1..i (-1 where the window runs
    off the start) and the block index at position i+1 (the target). Returns (idx (N-1, W), target (N-1,)).
    """
    n = order.shape[0]
    pos = torch.arange(n - 1).unsqueeze(1) + torch.arange(-window + 1, 1).unsqueeze(0)  # (N-1, W)
    idx = torch.where(pos >= 0, order[pos.clamp_min(0)], torch.full_like(pos, -1))
    return idx, order[1:]


def gather_windows(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Latents for window indices: z (N, D), idx (M, W) with -1 = zero padding -> (M, W, D)."""
    zp = F.pad(z, (0, 0, 0, 1))  # row N is the zero pad
    return zp[torch.where(idx >= 0, idx, torch.full_like(idx, z.shape[0]))]
