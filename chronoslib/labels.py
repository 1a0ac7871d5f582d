"""Ground-truth labels per block: the project's one majority-label rule.

A label series (T,) holds integer regime codes; missing labels are -1, NaN or any negative value. Every module
that needs one label per block (synthetic sets, regime views, the replay's neighbour table, the evaluation)
calls ``block_majority``, so they agree about missing labels and ties.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, DataError


def _codes(labels: np.ndarray) -> np.ndarray:
    """(T,) int64 codes with every missing label (NaN, inf, negative) as -1."""
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise DataError(f"labels must be a 1-D series (T,), got shape {lab.shape}")
    if lab.dtype.kind == "b" or lab.dtype.kind not in "iuf":
        raise DataError(f"labels must be integer regime codes (NaN / negative = missing), got dtype {lab.dtype}")
    if lab.dtype.kind == "f":
        ok = np.isfinite(lab) & (lab >= 0)
        bad = ok & (lab != np.floor(lab))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"labels must be whole regime codes; tick {i} holds {lab[i]!r}")
        if ok.any() and float(lab[ok].max()) >= 2.0 ** 62:
            raise DataError(f"label code {float(lab[ok].max())!r} is too large for an integer code")
        return np.where(ok, lab, -1).astype(np.int64)
    lab = lab.astype(np.int64)
    return np.where(lab >= 0, lab, -1)


def block_majority(labels: np.ndarray, block_len: int, starts: np.ndarray | None = None,
                   return_share: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Majority label code of each block; missing labels (negative or NaN) are ignored, a block with no label
    at all gets -1, ties go to the lowest code.

    Blocks are the complete non-overlapping ones from tick 0, or ``block_len`` ticks from each of ``starts`` (N,).
    With ``return_share`` also the share of the block (of ``block_len`` ticks) that the majority covers (0 for
    an unlabelled block). Memory is O(N * distinct codes), whatever the codes' values.

    >>> block_majority(np.array([0, 1, 1, -1, -1, -1, 2, 2]), 4).tolist()
    [1, 2]
    """
    if isinstance(block_len, bool) or not isinstance(block_len, (int, np.integer)) or block_len < 1:
        raise ConfigError(f"block_len must be a positive integer, got {block_len!r}")
    bl = int(block_len)
    lab = _codes(labels)
    if starts is None:
        n = lab.shape[0] // bl
        lb = lab[: n * bl].reshape(n, bl)                                       # (N, L)
    else:
        st = np.asarray(starts)
        if st.ndim != 1 or (st.size and st.dtype.kind not in "iu"):
            raise DataError(f"block starts must be a 1-D integer array, got shape {st.shape} dtype {st.dtype}")
        st = st.astype(np.int64)
        if st.size and (st.min() < 0 or st.max() + bl > lab.shape[0]):
            i = int(np.flatnonzero((st < 0) | (st + bl > lab.shape[0]))[0])
            raise DataError(f"block {i} (ticks {int(st[i])}..{int(st[i]) + bl - 1}) lies outside the "
                            f"{lab.shape[0]} labelled ticks")
        lb = lab[st[:, None] + np.arange(bl)[None, :]]                            # (N, L)
    n = lb.shape[0]
    vals = np.unique(lb[lb >= 0])                                               # (V,) sorted codes present
    if n == 0 or vals.size == 0:
        maj, top = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    else:
        present = lb >= 0
        idx = np.searchsorted(vals, np.where(present, lb, vals[0]))            # (N, L) code -> 0..V-1
        rows = np.broadcast_to(np.arange(n)[:, None], lb.shape)
        counts = np.bincount((rows * vals.size + idx)[present], minlength=n * vals.size).reshape(n, vals.size)
        top = counts.max(axis=1)
        maj = np.where(top > 0, vals[counts.argmax(axis=1)], -1)               # argmax: first = lowest code
    if not return_share:
        return maj
    return maj, top / bl
