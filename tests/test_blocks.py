"""Block slicing: causal, non-overlapping, trailing ticks reported, too-short data refused."""

import numpy as np
import pytest
import torch

from chronoslib.blocks import slice_blocks
from chronoslib.errors import DataError, NotEnoughBlocksError


def test_blocks_are_the_consecutive_slices_of_the_data():
    x = np.arange(22 * 3, dtype=np.float32).reshape(22, 3)
    s = slice_blocks(x, 5)
    assert s.blocks.shape == (4, 5, 3)
    assert s.starts.tolist() == [0, 5, 10, 15]
    assert s.trailing == 2
    for i, st in enumerate(s.starts):
        np.testing.assert_array_equal(s.blocks[i], x[st:st + 5])


def test_torch_input_gives_torch_blocks():
    s = slice_blocks(torch.zeros(40, 2), 10)
    assert torch.is_tensor(s.blocks) and s.blocks.shape == (4, 10, 2)


def test_fewer_than_four_blocks_is_the_spec_error():
    with pytest.raises(NotEnoughBlocksError, match="Need at least 4 blocks.*255 ticks.*at least 256"):
        slice_blocks(np.zeros((255, 6)), 64)


def test_non_2d_input_is_refused():
    with pytest.raises(DataError, match="2-D"):
        slice_blocks(np.zeros(300), 64)


def test_blocks_end_is_one_past_the_last_covered_tick():
    from chronoslib.blocks import blocks_end

    assert blocks_end(np.array([0, 16, 32]), 16) == 48
    assert blocks_end(np.array([32, 0]), 8) == 40
    assert blocks_end(np.array([], dtype=np.int64), 16) == 0
