"""The one-window live path: encoder and predictor step for a single query with as few operations as the maths
allows, because at batch 1 every operation's dispatch costs more than its arithmetic.

``LivePath`` is built from a trained encoder, the fitted normaliser's (centre, scale) and the predictor, after
training or loading (``ChronosDefragEngine._warm_up``); the weights must not change afterwards. Same maths as
``RegimeEncoder.forward`` and ``TemporalPredictor.step`` + ``readout`` (tests compare them, on both kernels);
what differs:

* normalisation is folded into the first (1 x 1) conv: ((x - c) / s) @ W + b = x @ (W / s) + (b - (c / s) @ W);
* a causal conv is one matmul over its k shifted input copies: each conv's input lives in a zero-padded
  buffer (pad rows stay zero) and the k taps are one strided view of it, copied into a column buffer;
* the last conv is only ever averaged over ticks (mean pooling), and the mean commutes with a linear map, so
  it is one matrix-vector product on the sum of its input columns (1 / L and its bias folded into the head).

Two kernels, chosen once per model by its width (``kernel_for``), with the same results to ~1e-7:

* ``"blas"`` (hidden < ``ONEDNN_MIN_HIDDEN``): NumPy's BLAS and ufuncs, ~1 us per call against torch's ~3 us.
  NumPy has no erf, so GELU runs as one torch.erf on a view of the same buffer, scaled so it costs three calls:
  with u = y / sqrt 2 computed by weights pre-scaled by 1 / sqrt 2, sqrt 2 GELU(y) = u + u erf(u); every
  activation is carried sqrt 2 times its true value and the next layer's weights divide it back (conv1 weights
  / 2 and bias / sqrt 2, conv2 bias * sqrt 2, the head / sqrt 2). The column buffer carries a ones column whose
  weight row is the bias, so matmul and bias are one call. The predictor cell runs in NumPy too: sigmoid(v) =
  (1 + tanh(v / 2)) / 2 (gate rows pre-halved) makes the cell one matvec on [x, h, 1] and one tanh.
* ``"onednn"`` (wider models, where oneDNN is available): torch's oneDNN linear with GELU and the residual add
  fused into the matmul (``torch.ops.mkldnn._linear_pointwise``) on weights reordered once; at hidden 128 its
  matmul was ~1.6x NumPy's and MKL's on the AMD EPYC (AVX-512) machine measured, while its ~12 us call
  overhead loses at hidden 32.

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
from .errors import ConfigError, DataError
from .numeric_checks import check_latents_finite, live_windows
from .predictor import TemporalPredictor

ONEDNN_MIN_HIDDEN = 96   # below it oneDNN's per-call overhead outweighs its faster matmul
_SQRT2 = math.sqrt(2.0)
_gelu_ = torch._C._nn.gelu_  # in-place exact (erf) GELU, the same kernel as F.gelu


def _conv_matrix(conv: CausalConv1d) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(W (k C_in, C_out), bias (C_out,), k, dilation): tap j of a causal conv reads tick t - (k - 1 - j) d,
    i.e. row t + j d of the input padded with (k - 1) d zero rows on top."""
    w = conv.weight.detach()                                   # (C_out, C_in, k)
    return (w.permute(2, 1, 0).reshape(-1, w.shape[0]).numpy().copy(), conv.bias.detach().numpy().copy(),
            conv.kernel_size[0], conv.dilation[0])


def _onednn_available() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise") \
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    except (AttributeError, RuntimeError):
        return False


def kernel_for(hidden: int) -> str:
    """The live path's kernel for an encoder of this width: "onednn" from ``ONEDNN_MIN_HIDDEN`` channels where
    torch has oneDNN, "blas" otherwise."""
    return "onednn" if hidden >= ONEDNN_MIN_HIDDEN and _onednn_available() else "blas"


def _taps(p: np.ndarray, length: int, k: int, d: int) -> np.ndarray:
    """The causal conv's input columns as a view of padded buffer p (L + (k - 1) d, H): (L, k, H), row t's
    tap j = row t + j d."""
    h, item = p.shape[1], p.itemsize
    return np.lib.stride_tricks.as_strided(p, (length, k, h), (h * item, d * h * item, item), writeable=False)


class _BlasEncoder:
    """``encode`` on the "blas" kernel: NumPy matmuls and ufuncs, GELU as sqrt 2 GELU(y) = u + u erf(u)."""

    def __init__(self, w0: np.ndarray, b0: np.ndarray, blocks: list, last_w2: np.ndarray, wl: np.ndarray,
                 bl: np.ndarray, length: int) -> None:
        self.length, self.hidden = length, w0.shape[1]
        self.w0, self.b0 = w0 / _SQRT2, b0 / _SQRT2               # (F, H), (H,): u of the input conv
        # Column buffer [taps, 1] @ [W; bias]: conv1 reads sqrt 2 h and gives u = y1 / sqrt 2 (W / 2, b / sqrt 2);
        # conv2 reads sqrt 2 g and gives sqrt 2 y2 (W unchanged, b * sqrt 2), added to sqrt 2 h.
        self.convs = [((np.vstack([w1 / 2, b1[None] / _SQRT2]), k1, d1), (np.vstack([w2, b2[None] * _SQRT2]), k2, d2))
                      for (w1, b1, k1, d1), (w2, b2, k2, d2) in blocks]
        self.last_w2, self.wl, self.bl = last_w2, wl / _SQRT2, bl   # pooled sums are sqrt 2 their true value
        self._local = threading.local()

    def _buffers(self) -> tuple:
        """This thread's (u, erf(u), their torch views, per block [(input interior, its taps view, column
        buffer, its taps part)] for both convs); pad rows stay zero and the ones column stays one."""
        b = getattr(self._local, "b", None)
        if b is None:
            length, h = self.length, self.hidden
            u, e = np.empty((length, h), np.float32), np.empty((length, h), np.float32)
            layers = []
            for conv_pair in self.convs:
                pair = []
                for _, k, d in conv_pair:
                    p = np.zeros((length + (k - 1) * d, h), np.float32)
                    c = np.ones((length, k * h + 1), np.float32)
                    c_taps = np.lib.stride_tricks.as_strided(c, (length, k, h), (c.strides[0], h * 4, 4))
                    pair.append((p[(k - 1) * d:], _taps(p, length, k, d), c, c_taps))
                layers.append(pair)
            b = self._local.b = (u, e, torch.from_numpy(u), torch.from_numpy(e), layers)
        return b

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Unit latent (D,) of one raw window x (L, F) float32."""
        u, e, ut, et, layers = self._buffers()
        np.matmul(x, self.w0, out=u)
        np.add(u, self.b0, out=u)
        torch.erf(ut, out=et)                                       # sqrt 2 GELU = u + u erf(u), into block 0
        np.multiply(u, e, out=e)
        np.add(u, e, out=layers[0][0][0])
        last = len(layers) - 1
        for i, ((h, taps1, c1, ct1), (g, taps2, c2, ct2)) in enumerate(layers):
            (w1, _, _), (w2, _, _) = self.convs[i]
            np.copyto(ct1, taps1)
            np.matmul(c1, w1, out=u)                                # u = conv1(h) / sqrt 2, bias included
            torch.erf(ut, out=et)
            np.multiply(u, e, out=e)
            np.add(u, e, out=g)                                     # sqrt 2 GELU, into conv2's input
            if i < last:                                            # sqrt 2 (h + conv2(g)), into the next block
                nxt = layers[i + 1][0][0]
                np.copyto(ct2, taps2)
                np.matmul(c2, w2, out=nxt)
                np.add(nxt, h, out=nxt)
            else:                                                   # sqrt 2 sum_t(h + conv2(g) - b2): (H,)
                pooled = self.last_w2 @ taps2.sum(0).reshape(-1)
                pooled += h.sum(0)
        z = self.wl @ pooled
        z += self.bl
        return z / max(math.sqrt(float(z @ z)), 1e-12)


class _OneDNNEncoder:
    """``encode`` on the "onednn" kernel: each conv one oneDNN linear with GELU or the residual add fused."""

    def __init__(self, w0: np.ndarray, b0: np.ndarray, blocks: list, last_w2: np.ndarray, wl: np.ndarray,
                 bl: np.ndarray, length: int) -> None:
        self.length, self.hidden = length, w0.shape[1]
        t = torch.from_numpy
        self.w0, self.b0 = t(w0), t(b0)
        mk = torch.ops.mkldnn
        # oneDNN takes the (C_out, k C_in) weight, reordered once into its blocked layout for L-row inputs.
        self.convs = [((mk._reorder_linear_weight(t(w1.T.copy()), length), t(b1), k1, d1),
                       (mk._reorder_linear_weight(t(w2.T.copy()), length), t(b2), k2, d2))
                      for (w1, b1, k1, d1), (w2, b2, k2, d2) in blocks]
        self.last_w2, self.wl, self.bl = t(last_w2), t(wl), t(bl)
        self._linear, self._linear_add = mk._linear_pointwise.default, mk._linear_pointwise.binary
        self._local = threading.local()

    def _buffers(self) -> list:
        """This thread's per block, per conv: (input interior as a tensor and as an array, its taps view, column
        buffer as a tensor, its taps part as an array)."""
        b = getattr(self._local, "b", None)
        if b is None:
            length, h, b = self.length, self.hidden, []
            for conv_pair in self.convs:
                pair = []
                for _, _, k, d in conv_pair:   # NumPy views for the copies: ~half torch's copy_ call here
                    p, c = np.zeros((length + (k - 1) * d, h), np.float32), np.empty((length, k * h), np.float32)
                    pair.append((torch.from_numpy(p[(k - 1) * d:]), p[(k - 1) * d:], _taps(p, length, k, d),
                                 torch.from_numpy(c), c.reshape(length, k, h)))
                b.append(pair)
            self._local.b = b
        return b

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unit latent (D,) of one raw window x (L, F)."""
        layers = self._buffers()
        _gelu_(torch.addmm(self.b0, x, self.w0, out=layers[0][0][0]))
        last = len(layers) - 1
        for i, ((h, _, taps1, c1, ct1), (_, g, taps2, c2, ct2)) in enumerate(layers):
            (w1, b1, _, _), (w2, b2, _, _) = self.convs[i]
            np.copyto(ct1, taps1)
            np.copyto(g, self._linear(c1, w1, b1, "gelu", [], "none").numpy())             # GELU(conv1(h))
            if i < last:
                np.copyto(ct2, taps2)
                np.copyto(layers[i + 1][0][1], self._linear_add(c2, h, w2, b2, "add").numpy())  # h + conv2(g)
            else:
                pooled = torch.addmv(h.sum(0), self.last_w2, torch.from_numpy(taps2.sum(0).reshape(-1)))
        z = torch.addmv(self.bl, self.wl, pooled)
        return z / z.norm().clamp_min(1e-12)


class _Step:
    """``step`` in NumPy: each cell one matvec of [W_x W_h b] on [x, h, 1] and one tanh, with the two
    sigmoid gates' rows pre-halved (sigmoid(v) = (1 + tanh(v / 2)) / 2)."""

    def __init__(self, predictor: TemporalPredictor) -> None:
        hp = self.hidden = predictor.cfg.hidden_dim
        self.cells = []
        for c in predictor.cells:
            w = np.hstack([c.lin.weight.detach().numpy(), c.lin.bias.detach().numpy()[:, None]])  # (3 Hp, in+Hp+1)
            w[hp:] *= 0.5
            self.cells.append((w, w.shape[1] - 1 - hp))
        self.head_w = predictor.head.weight.detach().numpy().copy()
        self.head_b = predictor.head.bias.detach().numpy().copy()
        self._local = threading.local()

    def _buffers(self) -> list:
        """This thread's per cell (v = [x, h, 1], its x part, its h part, pre-activations (3 Hp,))."""
        b = getattr(self._local, "b", None)
        if b is None:
            b = []
            for _, n_in in self.cells:
                v = np.ones(n_in + self.hidden + 1, np.float32)
                b.append((v, v[:n_in], v[n_in:n_in + self.hidden], np.empty(3 * self.hidden, np.float32)))
            self._local.b = b
        return b

    def step(self, q: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Forecast (forecast_dim,) from latent q (D,) and blended state (S,)."""
        hp, bufs = self.hidden, self._buffers()
        np.copyto(bufs[0][1], q)
        x = None
        for j, ((w, _), (v, _, h_part, pre)) in enumerate(zip(self.cells, bufs)):
            h = state[j * hp:(j + 1) * hp]
            np.copyto(h_part, h)
            np.dot(w, v, out=pre)
            np.tanh(pre, out=pre)                                   # tanh(a), tanh(b / 2), tanh(g / 2)
            gates = pre[hp:]
            np.multiply(gates, 0.5, out=gates)
            np.add(gates, 0.5, out=gates)                           # sigmoid(b), sigmoid(g)
            c = pre[:hp]
            np.multiply(c, pre[hp:2 * hp], out=c)                   # GLU candidate
            np.subtract(c, h, out=c)
            np.multiply(c, pre[2 * hp:], out=c)                     # g (c - h)
            x = bufs[j + 1][1] if j + 1 < len(bufs) else np.empty(hp, np.float32)
            np.add(h, c, out=x)                                     # h + g (c - h): the next cell's input
        out = self.head_w @ x
        out += self.head_b
        return out


class LivePath:
    """Latent (``encode``) and forecast (``step``) of one live window, from frozen copies of the weights."""

    def __init__(self, encoder: RegimeEncoder, centre: np.ndarray, scale: np.ndarray,
                 predictor: TemporalPredictor, kernel: str | None = None) -> None:
        e = encoder.cfg
        self.block_len, self.input_dim, self.hidden = e.block_len, e.input_dim, e.hidden_dim
        self.kernel = kernel_for(e.hidden_dim) if kernel is None else kernel
        if self.kernel not in ("blas", "onednn") or (self.kernel == "onednn" and not _onednn_available()):
            raise ConfigError(f"live-path kernel must be 'blas' or 'onednn' (where available), got {self.kernel!r}")
        c = np.asarray(centre, dtype=np.float32).reshape(-1)                   # (F,)
        s = np.asarray(scale, dtype=np.float32).reshape(-1)                    # (F,)
        w0 = encoder.in_proj.weight.detach()[:, :, 0].T.numpy()                # (F, H)
        b0 = encoder.in_proj.bias.detach().numpy() - (c / s) @ w0              # (H,)
        blocks = [(_conv_matrix(b.conv1), _conv_matrix(b.conv2)) for b in encoder.blocks]
        # Mean pooling folded into the head: z = (W_l / L) (sum_t h + W_2 sum_t cols) + (W_l b_2 + b_l), with the
        # last block's skip input h and conv2 columns cols.
        wl, bl = encoder.latent_head.weight.detach().numpy(), encoder.latent_head.bias.detach().numpy()  # (D, H)
        args = ((w0 / s[:, None]).astype(np.float32), b0.astype(np.float32), blocks,
                np.ascontiguousarray(blocks[-1][1][0].T), (wl / e.block_len).astype(np.float32),
                (bl + wl @ blocks[-1][1][1]).astype(np.float32), e.block_len)
        self._encoder = (_BlasEncoder if self.kernel == "blas" else _OneDNNEncoder)(*args)
        self._step = _Step(predictor)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unit latent (D,) of one raw (un-normalised) window x (L, F) float32; call under inference_mode."""
        if self.kernel == "blas":
            with np.errstate(all="ignore"):   # a NaN / inf window is refused by ``check``, without warnings
                return torch.from_numpy(self._encoder.encode(x.numpy()))
        return self._encoder.encode(x)

    def step(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Forecast (forecast_dim,) of one step from latent q (D,) and blended state (S,) (all layers')."""
        return torch.from_numpy(self._step.step(q.numpy(), state.numpy()))
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
