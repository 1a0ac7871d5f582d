"""Causal, non-overlapping block slicing of a (T, F) series.

Block ``i`` covers ticks ``[i * L, (i + 1) * L)``; nothing in block ``i`` comes from after its last tick, and
blocks never overlap. Ticks at the end that do not fill a whole block are reported (``SlicedBlocks.trailing``)
rather than silently dropped. Works on NumPy arrays and torch tensors alike (a view, no copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DataError, NotEnoughBlocksError

MIN_BLOCKS = 4


@dataclass
class SlicedBlocks:
    blocks: Any            # (N, L, F), same array type as the input
    starts: np.ndarray     # (N,) int64 start tick of each block
    trailing: int          # ticks at the end that did not fill a block (ignored)

    @property
    def n_blocks(self) -> int:
        return int(self.starts.shape[0])


def slice_blocks(data: Any, block_len: int, min_blocks: int = MIN_BLOCKS) -> SlicedBlocks:
    """Cut ``data`` (T, F) into ``T // block_len`` blocks of shape (block_len, F).

    >>> s = slice_blocks(np.zeros((10, 2)), 4, min_blocks=1)
    >>> s.blocks.shape, s.starts.tolist(), s.trailing
    ((2, 4, 2), [0, 4], 2)
    """
    if block_len < 1:
        raise DataError(f"block_len must be >= 1, got {block_len}")
    if getattr(data, "ndim", None) != 2:
        raise DataError(f"data must be 2-D (T ticks, F features), got shape {tuple(getattr(data, 'shape', ()))}")
    t = int(data.shape[0])
    n = t // block_len
    if n < min_blocks:
        raise NotEnoughBlocksError(
            f"Need at least {min_blocks} blocks: got {t} ticks, which make {n} block(s) of block_len={block_len}; "
            f"provide at least {min_blocks * block_len} ticks or lower encoder.block_len"
        )
    used = n * block_len
    blocks = data[:used].reshape(n, block_len, data.shape[1])
    starts = np.arange(n, dtype=np.int64) * block_len
    return SlicedBlocks(blocks=blocks, starts=starts, trailing=t - used)


def blocks_end(starts: Any, block_len: int) -> int:
    """One past the last tick the blocks starting at ``starts`` (N,) cover; 0 for no blocks.

    Blocks "fit" a series of T ticks when ``blocks_end(starts, block_len) <= T``: the one check of whether a
    model's training blocks line up with the dataset they are shown or labelled with.

    >>> blocks_end(np.array([0, 16, 32]), 16)
    48
    """
    s = np.asarray(starts, dtype=np.int64)
    return int(s.max()) + int(block_len) if s.size else 0
