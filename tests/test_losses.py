"""InfoNCE, TER and LCR against direct computations; TER really penalises collapse; LCR carries gradient."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chronoslib.losses import (
    entropy_target,
    info_nce,
    latent_continuity_reg,
    spectral_entropy,
    temporal_entropy_reg,
)


def _row_softmax_entropy(z):
    """The spec's literal TER statistic: mean row entropy of softmax(z z^T) (not used by the library)."""
    p = torch.softmax(z @ z.T, dim=1)
    return -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1).mean()


def _unit(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=1)


def test_info_nce_matches_a_numpy_computation():
    p1, p2, tau = _unit(6, 4, 1), _unit(6, 4, 2), 0.3
    a, b = p1.numpy().astype(np.float64), p2.numpy().astype(np.float64)
    logits = a @ b.T / tau

    def ce(lg):
        lg = lg - lg.max(axis=1, keepdims=True)
        return float(np.mean(-np.diag(lg) + np.log(np.exp(lg).sum(axis=1))))

    expected = 0.5 * (ce(logits) + ce(logits.T))
    assert info_nce(p1, p2, tau).item() == pytest.approx(expected, rel=1e-5)


def test_info_nce_masks_the_same_block_drawn_twice():
    p = _unit(3, 4)
    p1 = torch.cat([p, p[:1]])       # block 0 appears twice
    ids = torch.tensor([0, 1, 2, 0])
    masked = info_nce(p1, p1, 0.5, ids=ids)
    unmasked = info_nce(p1, p1, 0.5)
    assert masked.item() < unmasked.item()  # the duplicate is no longer a negative
    assert torch.isfinite(masked)


def test_info_nce_with_a_batch_of_one_is_finite():
    p = _unit(1, 4)
    assert info_nce(p, p, 0.1).item() == pytest.approx(0.0, abs=1e-6)


def test_spectral_entropy_is_zero_for_collapse_and_log_d_for_an_orthonormal_batch():
    same = F.normalize(torch.ones(8, 4), dim=1)
    assert spectral_entropy(same).item() == pytest.approx(0.0, abs=1e-4)
    eye = torch.eye(4)
    assert spectral_entropy(eye).item() == pytest.approx(math.log(4), abs=1e-5)


def test_ter_penalises_a_collapsed_batch_and_not_a_diverse_one():
    collapsed = F.normalize(torch.ones(32, 16) + 0.01 * torch.randn(32, 16, generator=torch.Generator().manual_seed(0)),
                            dim=1)
    pen_c, h_c, target = temporal_entropy_reg(collapsed)
    pen_d, h_d, _ = temporal_entropy_reg(_unit(32, 16))
    assert target == pytest.approx(0.5 * math.log(16))
    assert pen_c.item() > 0.5 * target        # clearly positive
    assert pen_d.item() == pytest.approx(0.0, abs=1e-6)
    assert h_d > h_c


def test_ter_target_adapts_to_batch_size():
    assert entropy_target(4, 32) == pytest.approx(0.5 * math.log(4))
    assert entropy_target(64, 32) == pytest.approx(0.5 * math.log(32))


def test_the_spec_literal_ter_never_acts_which_is_why_we_deviate():
    # Row entropy of softmax(raw cosines) is >= 1/2 log B for any batch (cosines lie in [-1, 1]),
    # and a collapsed batch gives the *largest* entropy: the spec's hinge is always zero.
    for z in (_unit(32, 8), F.normalize(torch.ones(32, 8), dim=1)):
        assert _row_softmax_entropy(z).item() > 0.5 * math.log(32)
    assert _row_softmax_entropy(F.normalize(torch.ones(32, 8), dim=1)).item() == pytest.approx(math.log(32), abs=1e-5)


def test_ter_has_gradient_towards_spreading_out():
    z = (torch.ones(16, 8) + 0.05 * torch.randn(16, 8, generator=torch.Generator().manual_seed(1))).requires_grad_()
    pen, _, _ = temporal_entropy_reg(F.normalize(z, dim=1))
    pen.backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_lcr_matches_the_direct_formula():
    a, b = _unit(5, 3, 1), _unit(5, 3, 2)
    expected = np.mean(np.sum((b.numpy() - a.numpy()) ** 2, axis=1))
    assert latent_continuity_reg(a, b).item() == pytest.approx(expected, rel=1e-6)
    assert latent_continuity_reg(a[:0], b[:0]).item() == 0.0
