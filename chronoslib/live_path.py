"""The one-window live path: encoder and predictor step for a single query with as few operations as the maths
allows, because at batch 1 every operation's dispatch costs more than its arithmetic.

``LivePath`` is built from a trained encoder, the fitted normaliser's (centre, scale) and the predictor, after
training or loading (``ChronosDefragEngine._warm_up``); the weights must not change afterwards. Same maths as
``RegimeEncoder.forward`` and ``TemporalPredictor.step`` + ``readout`` (tests compare them, on every kernel);
what differs:

* normalisation is folded into the first (1 x 1) conv: ((x - c) / s) @ W + b = x @ (W / s) + (b - (c / s) @ W);
* a causal conv is one matmul over its k shifted input copies: the block input h and the conv2 input g live
  below zero pad rows (the widest dilation's), each conv's k taps are one strided view of them, copied into
  one column buffer that every conv shares (``_Buffers``: ~4 L H + L k H floats whatever the depth, so the
  weights keep the cache; one buffer per conv cost ~0.05 ms a window at the reference width);
* the last conv is only ever averaged over ticks (mean pooling), and the mean commutes with a linear map, so
  it is one matrix-vector product on the sum of its input columns (1 / L and its bias folded into the head).

Three kernels, chosen once per model by its width and the CPU (``kernel_for``), with the same results to ~1e-7:

* ``"blas"`` (hidden < ``WIDE_MIN_HIDDEN``): NumPy's BLAS and ufuncs, ~1 us per call against torch's ~3 us.
  NumPy has no erf, so GELU runs as one torch.erf on a view of the same buffer, scaled so it costs three calls:
  with u = y / sqrt 2 computed by weights pre-scaled by 1 / sqrt 2, sqrt 2 GELU(y) = u + u erf(u); every
  activation is carried sqrt 2 times its true value and the next layer's weights divide it back (conv1 weights
  / 2 and bias / sqrt 2, conv2 bias * sqrt 2, the head / sqrt 2). The column buffer carries a ones column whose
  weight row is the bias, so matmul and bias are one call. The predictor cell runs in NumPy too: sigmoid(v) =
  (1 + tanh(v / 2)) / 2 (gate rows pre-halved) makes the cell one matvec on [x, h, 1] and one tanh.
* ``"mkl"`` (wider models on Intel CPUs): the same buffers and ufuncs with each matmul a ``torch.mm`` on views
  of them, i.e. MKL's sgemm, which on the Intel Xeon measured ran the reference width's conv at ~185 GFLOP/s
  (about one core's AVX-512 peak), ahead of oneDNN and NumPy's OpenBLAS.
* ``"onednn"`` (wider models elsewhere): torch's oneDNN linear with GELU and the residual add fused into the
  matmul (``torch.ops.mkldnn._linear_pointwise``) on weights reordered once; at hidden 128 its matmul was
  ~1.6x NumPy's and MKL's on the AMD EPYC (AVX-512) machine measured, while its ~12 us call overhead loses at
  hidden 32.

Buffers are per thread (``threading.local``), so concurrent ``predict_live`` calls never share one.
``window_tensor`` is the cheap input check: one isinstance / dtype / shape test for a float32 array of the
model's shape, the full ``numeric_checks.live_windows`` otherwise; non-finite values are caught on the latent
(a NaN or inf anywhere in the window reaches it through the first matmul) and then named on the input.
``in_chunks`` runs a batch's chunks on worker threads (``predict_batch``: both cores of this machine).
Knows nothing about registries, routing or training.
"""

from __future__ import annotations

import functools
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

WIDE_MIN_HIDDEN = 96   # below it the per-call overhead of MKL and oneDNN outweighs their faster matmul
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


def _mkl_available() -> bool:
    try:
        return bool(torch.backends.mkl.is_available())
    except (AttributeError, RuntimeError):
        return False


def cpu_vendor() -> str:
    """The CPU's vendor id as Linux reports it ("GenuineIntel", "AuthenticAMD", ...; "" where unknown)."""
    return _cpuinfo_field("vendor_id")


def cpu_model() -> str:
    """The CPU's model name as Linux reports it ("" where unknown)."""
    return _cpuinfo_field("model name")


@functools.cache   # read once per process: the CPU does not change under a running engine
def _cpuinfo_field(name: str) -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def available_kernels() -> tuple[str, ...]:
    """The kernels this torch build can run: "blas" always, "mkl" and "onednn" where torch has them."""
    return ("blas",) + (("mkl",) if _mkl_available() else ()) + (("onednn",) if _onednn_available() else ())


def kernel_for(hidden: int, vendor: str | None = None) -> str:
    """The live path's kernel for an encoder of this width on a CPU of this vendor (None: this machine's).

    Below ``WIDE_MIN_HIDDEN`` channels "blas" (the call overhead decides); wider, the fastest matmul measured for
    the reference width's (64, 384) x (384, 128) conv: on Intel, MKL's sgemm ("mkl": 34 us against oneDNN's 52 and
    NumPy's 46 on the Xeon measured); elsewhere oneDNN ("onednn": 39 us against NumPy's 63 and MKL's 68 on the
    AMD EPYC measured, where MKL was slower than NumPy); "blas" where torch has neither."""
    if hidden < WIDE_MIN_HIDDEN:
        return "blas"
    have = available_kernels()
    intel = (cpu_vendor() if vendor is None else vendor) == "GenuineIntel"
    for kernel in (("mkl", "onednn") if intel else ("onednn",)):
        if kernel in have:
            return kernel
    return "blas"


def _taps(p: np.ndarray, pad: int, length: int, k: int, d: int) -> np.ndarray:
    """The causal conv's input columns as a view of buffer p (pad + L, H) whose first ``pad`` rows are zero:
    (L, k, H), row t's tap j = row pad - (k - 1) d + t + j d."""
    h, item = p.shape[1], p.itemsize
    return np.lib.stride_tricks.as_strided(p[pad - (k - 1) * d:], (length, k, h), (h * item, d * h * item, item),
                                           writeable=False)


class _Buffers:
    """One thread's working memory for one window, shared by every conv (they all read k taps of H channels):
    the block input h and the conv2 input g, each (L, H) below ``pad`` zero rows (the widest dilation's), a
    column buffer (L, k H [+ 1]) with each conv's taps views into it, and u, e (L, H). About 4 L H + L k H
    floats whatever the depth, so the weights keep the cache."""

    def __init__(self, convs: list, length: int, hidden: int, ones: bool) -> None:
        k = convs[0][0][1]
        pad = max((kk - 1) * d for pair in convs for _, kk, d in pair)
        hp, gp = np.zeros((pad + length, hidden), np.float32), np.zeros((pad + length, hidden), np.float32)
        self.h, self.g = hp[pad:], gp[pad:]
        self.c = np.ones((length, k * hidden + int(ones)), np.float32)   # ones column: the bias row's input
        self.c_taps = np.lib.stride_tricks.as_strided(self.c, (length, k, hidden), (self.c.strides[0], hidden * 4, 4))
        self.taps = [(_taps(hp, pad, length, k, d1), _taps(gp, pad, length, k, d2)) for (_, _, d1), (_, _, d2) in convs]
        self.u, self.e = np.empty((length, hidden), np.float32), np.empty((length, hidden), np.float32)
        self.ht, self.ct, self.ut, self.et = (torch.from_numpy(a) for a in (self.h, self.c, self.u, self.e))


class _MatmulEncoder:
    """``encode`` on the "blas" (NumPy's matmul) or "mkl" (torch.mm) kernel, with the same buffers and ufuncs;
    GELU as sqrt 2 GELU(y) = u + u erf(u)."""

    def __init__(self, w0: np.ndarray, b0: np.ndarray, blocks: list, last_w2: np.ndarray, wl: np.ndarray,
                 bl: np.ndarray, length: int, kernel: str) -> None:
        self.length, self.hidden, self.kernel = length, w0.shape[1], kernel
        self.w0, self.b0 = w0 / _SQRT2, b0 / _SQRT2               # (F, H), (H,): u of the input conv
        # Column buffer [taps, 1] @ [W; bias]: conv1 reads sqrt 2 h and gives u = y1 / sqrt 2 (W / 2, b / sqrt 2);
        # conv2 reads sqrt 2 g and gives sqrt 2 y2 (W unchanged, b * sqrt 2), added to sqrt 2 h.
        self.convs = [((np.vstack([w1 / 2, b1[None] / _SQRT2]), k1, d1), (np.vstack([w2, b2[None] * _SQRT2]), k2, d2))
                      for (w1, b1, k1, d1), (w2, b2, k2, d2) in blocks]
        self.weights = [(torch.from_numpy(w1), torch.from_numpy(w2)) if kernel == "mkl" else (w1, w2)
                        for (w1, _, _), (w2, _, _) in self.convs]
        self.last_w2, self.wl, self.bl = last_w2, wl / _SQRT2, bl   # pooled sums are sqrt 2 their true value
        self._local = threading.local()

    def _buffers(self) -> _Buffers:
        b = getattr(self._local, "b", None)
        if b is None:
            b = self._local.b = _Buffers(self.convs, self.length, self.hidden, ones=True)
        return b

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Unit latent (D,) of one raw window x (L, F) float32."""
        b = self._buffers()
        u, e, h, g = b.u, b.e, b.h, b.g
        if self.kernel == "mkl":   # torch.mm on views of the same buffers: MKL's sgemm
            c, out = b.ct, b.ut
            mm = torch.mm
        else:
            c, out, mm = b.c, u, np.matmul
        np.matmul(x, self.w0, out=u)
        np.add(u, self.b0, out=u)
        torch.erf(b.ut, out=b.et)                                   # sqrt 2 GELU = u + u erf(u), into h
        np.multiply(u, e, out=e)
        np.add(u, e, out=h)
        last = len(self.convs) - 1
        for i, ((taps1, taps2), (w1, w2)) in enumerate(zip(b.taps, self.weights)):
            np.copyto(b.c_taps, taps1)
            mm(c, w1, out=out)                                      # u = conv1(h) / sqrt 2, bias included
            torch.erf(b.ut, out=b.et)
            np.multiply(u, e, out=e)
            np.add(u, e, out=g)                                     # sqrt 2 GELU, into conv2's input
            if i < last:                                            # sqrt 2 (h + conv2(g)): the next block's h
                np.copyto(b.c_taps, taps2)
                mm(c, w2, out=out)
                np.add(h, u, out=h)
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
        self.convs = [((w1, k1, d1), (w2, k2, d2)) for (w1, _, k1, d1), (w2, _, k2, d2) in blocks]
        # oneDNN takes the (C_out, k C_in) weight, reordered once into its blocked layout for L-row inputs.
        self.weights = [(mk._reorder_linear_weight(t(w1.T.copy()), length), t(b1),
                         mk._reorder_linear_weight(t(w2.T.copy()), length), t(b2))
                        for (w1, b1, _, _), (w2, b2, _, _) in blocks]
        self.last_w2, self.wl, self.bl = t(last_w2), t(wl), t(bl)
        self._linear, self._linear_add = mk._linear_pointwise.default, mk._linear_pointwise.binary
        self._local = threading.local()

    def _buffers(self) -> _Buffers:
        b = getattr(self._local, "b", None)
        if b is None:
            b = self._local.b = _Buffers(self.convs, self.length, self.hidden, ones=False)
        return b

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unit latent (D,) of one raw window x (L, F)."""
        b = self._buffers()
        _gelu_(torch.addmm(self.b0, x, self.w0, out=b.ht))
        last = len(self.convs) - 1
        for i, ((taps1, taps2), (w1, b1, w2, b2)) in enumerate(zip(b.taps, self.weights)):
            np.copyto(b.c_taps, taps1)           # NumPy copies: ~half torch's copy_ call here
            np.copyto(b.g, self._linear(b.ct, w1, b1, "gelu", [], "none").numpy())             # GELU(conv1(h))
            if i < last:
                np.copyto(b.c_taps, taps2)
                np.copyto(b.h, self._linear_add(b.ct, b.ht, w2, b2, "add").numpy())           # h + conv2(g)
            else:
                pooled = torch.addmv(b.ht.sum(0), self.last_w2, torch.from_numpy(taps2.sum(0).reshape(-1)))
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
        """This thread's per cell (v = [x, h, 1], its x part, its h part, pre-activations (3 Hp,)), then the last
        cell's output (Hp,) as the x part of a last entry."""
        b = getattr(self._local, "b", None)
        if b is None:
            b = []
            for _, n_in in self.cells:
                v = np.ones(n_in + self.hidden + 1, np.float32)
                b.append((v, v[:n_in], v[n_in:n_in + self.hidden], np.empty(3 * self.hidden, np.float32)))
            b.append((None, np.empty(self.hidden, np.float32), None, None))   # the last cell's output
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
            x = bufs[j + 1][1]
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
        if self.kernel not in available_kernels():
            raise ConfigError(f"live-path kernel must be one of {', '.join(available_kernels())} on this torch "
                              f"build, got {self.kernel!r}")
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
        self._encoder = _OneDNNEncoder(*args) if self.kernel == "onednn" else _MatmulEncoder(*args, self.kernel)
        self._step = _Step(predictor)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unit latent (D,) of one raw (un-normalised) window x (L, F) float32; call under inference_mode."""
        if self.kernel != "onednn":
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
