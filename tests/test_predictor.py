"""TemporalPredictor: shapes, windows along a permutation, and live state blending consistent with training."""

import torch

from chronoslib.config import PredictorConfig
from chronoslib.predictor import TemporalPredictor, gather_windows, pseudo_windows
from chronoslib.training import preceding_states


def _pred(window=3):
    torch.manual_seed(0)
    return TemporalPredictor(PredictorConfig(hidden_dim=6, n_layers=2, window=window, forecast_dim=2),
                             latent_dim=4).eval()


def test_forward_maps_windows_of_latents_to_forecasts():
    p = _pred()
    assert p(torch.randn(5, 3, 4)).shape == (5, 2)
    assert torch.allclose(p(torch.ones(2, 3, 4))[0], p(torch.ones(1, 3, 4))[0])


def test_pseudo_windows_follow_the_permutation_with_padding():
    order = torch.tensor([0, 3, 1, 2])
    idx, tgt = pseudo_windows(order, 3)
    assert idx.tolist() == [[-1, -1, 0], [-1, 0, 3], [0, 3, 1]]
    assert tgt.tolist() == [3, 1, 2]


def test_gather_windows_pads_with_zeros():
    z = torch.arange(8, dtype=torch.float32).reshape(4, 2)
    out = gather_windows(z, torch.tensor([[-1, 2]]))
    assert out.tolist() == [[[0.0, 0.0], [4.0, 5.0]]]


def test_live_step_from_preceding_state_equals_running_the_whole_window():
    # predict_live blends the states that precede neighbours and steps once with the query; for a single
    # neighbour at full weight this must equal the training-time forward over that neighbour's window.
    p = _pred(window=3)
    z = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    order = torch.tensor([0, 4, 2, 5, 1, 3])
    states = preceding_states(p, z, order)      # (N, S)
    pos = 3                                     # block order[3] = 5
    blk = int(order[pos])
    window = z[order[pos - 2: pos + 1]].unsqueeze(0)  # positions 1..3
    with torch.inference_mode():
        live = p.readout(p.step(z[blk:blk + 1], states[blk:blk + 1]))
        full = p(window)
    assert torch.allclose(live, full, atol=1e-6)
