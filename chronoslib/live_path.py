"""The one-window live path: encoder and predictor step for a single query with as few tensor operations as the
maths allows, because at batch 1 every operation's dispatch costs more than its arithmetic.

``LivePath`` is built from a trained encoder, the fitted normaliser's (centre, scale) and the predictor, after
training or loading (``ChronosDefragEngine._warm_up``); the weights must not change afterwards. Same maths as
``RegimeEncoder.forward`` and ``TemporalPredictor.step`` + ``readout`` (tests compare them); what differs:

* normalisation is folded into the first (1 x 1) conv: ((x - c) / s) @ W + b = x @ (W / s) + (b - (c / s) @ W);
* each causal conv reads its k shifted copies as one strided view of a zero-padded buffer (no pad / cat), and
  writes straight into the next conv's buffer (``out=``), so a window allocates almost nothing;
* the last conv is only ever averaged over ticks (mean pooling), and the mean commutes with a linear map, so
  it is one matrix-vector product on the sum of its input columns instead of an (L, k H) x (k H, H) product
  (1 / L and its bias folded into the latent head);
* the predictor cell's update h + g (c - h) is one ``lerp`` and its two sigmoids one call.

Buffers are per thread (``threading.local``), so concurrent ``predict_live`` calls never share one.
``window_tensor`` is the cheap input check: one isinstance / dtype / shape test for a float32 array of the
model's shape, the full ``numeric_checks.live_windows`` otherwise; non-finite values are caught on the latent
(a NaN or inf anywhere in the window reaches it through the first matmul) and then named on the input.
``in_chunks`` runs a batch's chunks on worker threads (``predict_batch``: both cores of this machine).
Knows nothing about registries, routing or training.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from .encoder import CausalConv1d, RegimeEncoder
from .errors import DataError
from .numeric_checks import check_latents_finite, live_windows
from .predictor import TemporalPredictor

_gelu_ = torch._C._nn.gelu_  # in-place exact (erf) GELU, the same kernel as F.gelu


def _conv_matrix(conv: CausalConv1d) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """(W (k C_in, C_out), bias (C_out,), k, dilation): tap j of a causal conv reads tick t - (k - 1 - j) d,
    i.e. row t + j d of the input padded with (k - 1) d zero rows on top."""
    w = conv.weight.detach()                                   # (C_out, C_in, k)
    return (w.permute(2, 1, 0).reshape(-1, w.shape[0]).contiguous(), conv.bias.detach().clone(),
            conv.kernel_size[0], conv.dilation[0])


class LivePath:
    """Latent (``encode``) and forecast (``step``) of one live window, from frozen copies of the weights."""

    def __init__(self, encoder: RegimeEncoder, centre: np.ndarray, scale: np.ndarray,
                 predictor: TemporalPredictor) -> None:
        e = encoder.cfg
        self.block_len, self.input_dim, self.hidden = e.block_len, e.input_dim, e.hidden_dim
        c = torch.as_tensor(np.asarray(centre, dtype=np.float32)).reshape(-1)   # (F,)
        s = torch.as_tensor(np.asarray(scale, dtype=np.float32)).reshape(-1)    # (F,)
        w0 = encoder.in_proj.weight.detach()[:, :, 0].T                          # (F, H)
        self.w0 = (w0 / s[:, None]).contiguous()
        self.b0 = (encoder.in_proj.bias.detach() - (c / s) @ w0).contiguous()   # (H,)
        self.blocks = [(_conv_matrix(b.conv1), _conv_matrix(b.conv2)) for b in encoder.blocks]
        # Mean pooling folded into the head: z = (W_l / L) (sum_t h + W_2 sum_t cols) + (W_l b_2 + b_l), with the
        # last block's skip input h and conv2 columns cols (sums are cheaper calls than means).
        self.last_w2 = self.blocks[-1][1][0].T.contiguous()                      # (H, k H) for one mv
        wl, bl = encoder.latent_head.weight.detach(), encoder.latent_head.bias.detach()  # (D, H), (D,)
        self.wl = (wl / e.block_len).contiguous()
        self.bl = (bl + wl @ self.blocks[-1][1][1]).contiguous()
        hp = self.state_hidden = predictor.cfg.hidden_dim
        # Each cell's Linear over cat([x, h]) split into its x and h columns: (3 Hp, in), (3 Hp, Hp), (3 Hp,).
        self.cells = [(c.lin.weight.detach()[:, :-hp].contiguous(), c.lin.weight.detach()[:, -hp:].contiguous(),
                       c.lin.bias.detach().clone()) for c in predictor.cells]
        self.head_w, self.head_b = predictor.head.weight.detach().clone(), predictor.head.bias.detach().clone()
        self._local = threading.local()

    def _buffers(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """This thread's zero-padded input buffers of every block's two convs: (P1, P1 interior, P2, P2
        interior), P (L + (k - 1) d, H); the pad rows stay zero, the interiors are overwritten per window."""
        bufs = getattr(self._local, "bufs", None)
        if bufs is None:
            bufs = []
            for c1, c2 in self.blocks:
                p1 = torch.zeros(self.block_len + (c1[2] - 1) * c1[3], self.hidden)
                p2 = torch.zeros(self.block_len + (c2[2] - 1) * c2[3], self.hidden)
                bufs.append((p1, p1[(c1[2] - 1) * c1[3]:], p2, p2[(c2[2] - 1) * c2[3]:]))
            self._local.bufs = bufs
        return bufs

    def _columns(self, p: torch.Tensor, k: int, d: int) -> torch.Tensor:
        """The causal conv's input columns as a view of padded buffer p: (L, k, H), row t = rows t + j d."""
        h = self.hidden
        return p.as_strided((self.block_len, k, h), (h, d * h, 1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unit latent (D,) of one raw (un-normalised) window x (L, F); call under inference_mode."""
        bufs, length, nb = self._buffers(), self.block_len, len(self.blocks)
        _gelu_(torch.addmm(self.b0, x, self.w0, out=bufs[0][1]))               # (L, H) into block 0's input
        for i, ((w1, b1, k1, d1), (w2, b2, k2, d2)) in enumerate(self.blocks):
            p1, h, p2, g = bufs[i]
            _gelu_(torch.addmm(b1, self._columns(p1, k1, d1).reshape(length, -1), w1, out=g))
            if i + 1 < nb:                                                      # h + conv2(g), into the next block
                nxt = torch.addmm(b2, self._columns(p2, k2, d2).reshape(length, -1), w2, out=bufs[i + 1][1])
                nxt += h
            else:                                                               # sum_t(h + conv2(g) - b2): (H,)
                pooled = torch.addmv(h.sum(0), self.last_w2, self._columns(p2, k2, d2).sum(0).reshape(-1))
        z = torch.addmv(self.bl, self.wl, pooled)                               # (D,)
        return z / z.norm().clamp_min(1e-12)

    def step(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Forecast (forecast_dim,) of one step from latent q (D,) and blended state (S,) (all layers')."""
        hp, x = self.state_hidden, q
        for j, (wx, wh, b) in enumerate(self.cells):
            h = state[j * hp:(j + 1) * hp]
            pre = torch.addmv(b, wx, x).addmv_(wh, h)                           # (3 Hp,): GLU value, gate, update
            sg = torch.sigmoid(pre[hp:])
            x = torch.lerp(h, torch.tanh(pre[:hp]).mul_(sg[:hp]), sg[hp:])      # h + g (c - h)
        return torch.addmv(self.head_b, self.head_w, x)

    def window_tensor(self, window: Any) -> torch.Tensor:
        """One live window as an (L, F) float32 tensor, checked for type and shape (finiteness: ``check``)."""
        if type(window) is np.ndarray and window.dtype == np.float32 and window.shape == (self.block_len,
                                                                                            self.input_dim):
            return torch.from_numpy(window)
        return live_windows(window, self.block_len, self.input_dim)[0]

    @staticmethod
    def check(q: torch.Tensor, x: torch.Tensor) -> None:
        """Refuse a window x (L, F) whose latent q (D,) is not finite, naming the cause: NaN / inf in the
        window, or finite values so large that the encoder overflows."""
        if math.isfinite(float(q.sum())):
            return
        if not bool(torch.isfinite(x).all()):
            raise DataError("window contains NaN or inf values")
        check_latents_finite(q)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def in_chunks(fn: Callable[[int], Any], n: int, chunk: int, workers: int | None = None) -> list[Any]:
    """``[fn(0), fn(chunk), fn(2 chunk), ...]`` over items 0..n-1, in order, on ``workers`` threads (None: the
    usable cores; never more than the chunks). torch ops release the GIL, so single-threaded ops on two
    threads use two cores, and every chunk is computed exactly as it would be alone (no change of result)."""
    starts = range(0, n, chunk)
    w = min(usable_cores() if workers is None else int(workers), len(starts))
    if w <= 1:
        return [fn(i) for i in starts]
    with ThreadPoolExecutor(w, thread_name_prefix="chronos-batch") as pool:
        return list(pool.map(fn, starts))
