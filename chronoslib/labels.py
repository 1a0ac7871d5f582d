"""Ground-truth labels per block: the project's one majority-label rule.

A label series (T,) holds integer regime codes; missing labels are -1, NaN or any negative value. Every module
that needs one label per block (synthetic sets, regime views, the replay's neighbour table, the evaluation)
calls ``block_majority``, so they agree about missing labels and ties.
"""

from __future__ import annotations

import numpy as np


def block_majority(labels: np.ndarray, block_len: int, starts: np.ndarray | None = None,
                   return_share: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Majority label code of each block; missing labels (negative or NaN) are ignored, a block with no label
    at all gets -1, ties go to the lowest code.

    Blocks are the complete non-overlapping ones from tick 0, or ``block_len`` ticks from each of ``starts`` (N,).
    With ``return_share`` also the share of the block (of ``block_len`` ticks) that the majority covers.

    >>> block_majority(np.array([0, 1, 1, -1, -1, -1, 2, 2]), 4).tolist()
    [1, 2]
    """
    lab = np.asarray(labels)
    if lab.dtype.kind == "f":
        lab = np.where(np.isfinite(lab), lab, -1)
    lab = lab.astype(np.int64)
    if starts is None:
        n = lab.shape[0] // block_len
        lb = lab[: n * block_len].reshape(n, block_len)                          # (N, L)
    else:
        lb = lab[np.asarray(starts, dtype=np.int64)[:, None] + np.arange(block_len)[None, :]]  # (N, L)
    k = max(int(lb.max(initial=-1)) + 1, 1)
    counts = np.stack([(lb == j).sum(axis=1) for j in range(k)], axis=1)          # (N, K)
    maj = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)
    if not return_share:
        return maj
    return maj, counts.max(axis=1) / block_len
