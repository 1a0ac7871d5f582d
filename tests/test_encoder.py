"""Encoder: causality, unit norm, fast paths equal to the reference, init, temperature, augmentation."""

import math

import pytest
import torch

from chronoslib.config import EncoderConfig
from chronoslib.encoder import CausalConv1d, RegimeEncoder, augment, cyclic_shift, jitter
from chronoslib.losses import info_nce, latent_continuity_reg


def _enc(**kw):
    torch.manual_seed(0)
    return RegimeEncoder(EncoderConfig(**{"input_dim": 3, "block_len": 24, "hidden_dim": 8, "latent_dim": 6,
                                          "proj_dim": 5, **kw})).eval()


@pytest.mark.parametrize("dilation", [1, 2, 4])
@pytest.mark.parametrize("batch", [1, 8])  # batch 1 takes the im2col path for dilation > 1
def test_causal_conv_output_never_sees_the_future(dilation, batch):
    torch.manual_seed(0)
    conv = CausalConv1d(3, 4, 3, dilation)
    x = torch.randn(batch, 3, 20)
    y = conv(x)
    x2 = x.clone()
    x2[:, :, 11:] += torch.randn(batch, 3, 9)  # change only ticks >= 11
    y2 = conv(x2)
    assert y.shape == (batch, 4, 20)
    assert torch.allclose(y[:, :, :11], y2[:, :, :11])
    assert not torch.allclose(y[:, :, 11:], y2[:, :, 11:])


def test_im2col_live_path_equals_the_conv_path():
    torch.manual_seed(0)
    conv = CausalConv1d(4, 5, 3, dilation=4)
    x = torch.randn(8, 4, 30)
    assert torch.allclose(conv(x)[:2], conv(x[:2]), atol=1e-5)  # batch 8: oneDNN conv; batch 2: im2col


def test_encoder_per_tick_features_are_causal():
    enc = _enc()
    x = torch.randn(2, 24, 3)
    f = enc.sequence_features(x)
    x2 = x.clone()
    x2[:, 15:] = 0
    f2 = enc.sequence_features(x2)
    assert torch.allclose(f[:, :, :15], f2[:, :, :15], atol=1e-6)
    assert not torch.allclose(f[:, :, 15:], f2[:, :, 15:])


def test_latents_are_unit_vectors_and_projections_too():
    enc = _enc()
    z = enc(torch.randn(5, 24, 3))
    assert z.shape == (5, 6)
    assert torch.allclose(z.norm(dim=1), torch.ones(5), atol=1e-5)
    p = enc.project(z)
    assert p.shape == (5, 5) and torch.allclose(p.norm(dim=1), torch.ones(5), atol=1e-5)


def test_xavier_init_and_zero_biases():
    enc = _enc()
    w = enc.latent_head.weight
    bound = math.sqrt(6.0 / (w.shape[0] + w.shape[1]))
    assert w.abs().max() <= bound + 1e-6
    assert torch.all(enc.latent_head.bias == 0)


def test_temperature_is_stored_as_a_log_and_learnable():
    enc = _enc(temperature=0.2)
    assert enc.log_temperature.item() == pytest.approx(math.log(0.2))
    assert enc.temperature.item() == pytest.approx(0.2)
    assert enc.log_temperature.requires_grad
    assert not _enc(learn_temperature=False).log_temperature.requires_grad


def test_cyclic_shift_rolls_each_block_by_its_own_amount():
    x = torch.arange(4 * 10, dtype=torch.float32).reshape(4, 10, 1).repeat(1, 1, 2)
    y = cyclic_shift(x, 9, torch.Generator().manual_seed(0))
    for b in range(4):
        # each row is a roll of the original: same values, rotation of the same sequence
        s = int((y[b, 0, 0] - x[b, 0, 0]).item())
        assert torch.equal(y[b], torch.roll(x[b], -s, dims=0))
    assert torch.equal(cyclic_shift(x, 0, torch.Generator()), x)


def test_jitter_has_the_requested_scale_and_is_seeded():
    x = torch.zeros(64, 32, 4)
    a = jitter(x, 0.1, torch.Generator().manual_seed(1))
    b = jitter(x, 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert a.std().item() == pytest.approx(0.1, rel=0.05)


def test_augment_keeps_shape_and_differs_between_views():
    cfg = EncoderConfig(input_dim=3, block_len=24)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 24, 3)
    v1, v2 = augment(x, cfg, g), augment(x, cfg, g)
    assert v1.shape == x.shape and not torch.equal(v1, v2)


def test_lcr_changes_the_encoder_gradient():
    # The spec's trap: LCR on detached latents has no gradient. Ours must shape the encoder's conv weights.
    enc = _enc().train()
    x = torch.randn(8, 24, 3)

    def conv_grad(with_lcr: bool) -> torch.Tensor:
        enc.zero_grad()
        z = enc(x)
        p = enc.project(z)
        loss = info_nce(p[:4], p[4:], 0.5)
        if with_lcr:
            loss = loss + latent_continuity_reg(z[:-1], z[1:])
        loss.backward()
        return enc.blocks[0].conv1.weight.grad.clone()

    g0, g1 = conv_grad(False), conv_grad(True)
    assert g1.abs().sum() > 0
    assert not torch.allclose(g0, g1)
