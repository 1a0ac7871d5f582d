"""Data-parallel encoder training (chronoslib.distributed) on CPU with gloo: two processes spawned here, joined by a
file:// rendezvous. One step on a global batch gives the one-process gradients; a two-rank fit of a labelled
series recovers its regimes within 0.05 ARI of a one-process fit (mean of three seeds), and its checkpoint loads
with the world size and backend in its provenance (one process: 1 and "none")."""


import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from chronoslib import ChronosDefragEngine, DefragConfig
from chronoslib.distributed import Shard, current_shard
from chronoslib.encoder import RegimeEncoder, augment
from chronoslib.synthetic import block_labels, make_regime_series
from chronoslib.training import ContrastiveHead, contrastive_loss

WORLD = 2


def _join(rank: int, rendezvous: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)


def _grads(encoder: RegimeEncoder) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().clone() for k, p in encoder.named_parameters() if p.grad is not None}


def _step_worker(rank: int, rendezvous: str, out: str) -> None:
    _join(rank, rendezvous)
    try:
        res = {pairs: _one_step(rank, pairs) for pairs in (16, 15)}   # an even split; ranks with 8 and 7 pairs
        if rank == 0:
            torch.save(res, out)
    finally:
        dist.destroy_process_group()


def _one_step(rank: int, pairs: int) -> dict[str, float]:
    cfg = DefragConfig()
    torch.manual_seed(0)
    blocks = torch.randn(64, cfg.encoder.block_len, cfg.encoder.input_dim)
    a = torch.randperm(63, generator=torch.Generator().manual_seed(1))[:pairs]   # one global batch
    g = torch.Generator().manual_seed(2)
    idx = torch.cat([a, a + 1])
    v1, v2 = augment(blocks[idx], cfg.encoder, g), augment(blocks[idx], cfg.encoder, g)   # (2M, L, F) each
    torch.manual_seed(3)
    ref = RegimeEncoder(cfg.encoder)
    ddp_enc = RegimeEncoder(cfg.encoder)
    ddp_enc.load_state_dict(ref.state_dict())
    # one process, the whole global batch
    contrastive_loss(ContrastiveHead(ref), ref.temperature, torch.cat([v1, v2]), idx, cfg)["loss"].backward()
    # this rank's pairs of the same batch, the same views
    shard = current_shard(torch.device("cpu"))
    assert shard is not None and shard.world == WORLD
    mine = torch.arange(pairs).tensor_split(WORLD)[rank]
    rows = torch.cat([mine, mine + pairs])                   # its anchors' rows, then their successors'
    loc_idx = idx[rows]
    model = shard.wrap(ContrastiveHead(ddp_enc))   # kept alive: its hooks average the gradients in backward
    out_d = contrastive_loss(model, ddp_enc.temperature, torch.cat([v1[rows], v2[rows]]), loc_idx, cfg, shard,
                             pairs)
    out_d["loss"].backward()
    gr, gd = _grads(ref), _grads(ddp_enc)
    assert gr.keys() == gd.keys() and len(gr) > 5
    worst = max(float((gr[k] - gd[k]).abs().max() / gr[k].abs().max().clamp_min(1e-12)) for k in gr)
    ref_norm = float(sum(v.norm() ** 2 for v in gr.values()) ** 0.5)
    diff_norm = float(sum((gr[k] - gd[k]).norm() ** 2 for k in gr) ** 0.5)
    return {"worst": worst, "global": diff_norm / ref_norm, "ref_norm": ref_norm}


def test_one_step_on_a_global_batch_gives_the_one_process_gradients(spawn_safe_main, tmp_path):
    out = str(tmp_path / "res.pt")
    mp.spawn(_step_worker, args=(str(tmp_path / "rdv"), out), nprocs=WORLD, join=True)
    for pairs, res in torch.load(out).items():
        assert res["ref_norm"] > 1e-3, pairs                   # a real gradient, not zeros
        # fp32 rounding of the two summation orders, measured over 6 model seeds x both kernel sets (AVX-512 and
        # ATEN_CPU_CAPABILITY=default): 2.0e-6 to 4.8e-6 of the whole gradient's norm; per tensor, relative to its
        # largest entry, <= 3e-6 except the last conv's bias (a sum over every tick of every row, with
        # cancellation): up to 2.6e-5. The halved-gradient trap and a row gathered without gradient are O(0.1-1).
        assert res["global"] < 1e-5, (pairs, res)
        assert res["worst"] < 1e-4, (pairs, res)


def test_shares_and_counts_agree():
    for world in (2, 3):
        for n in (2, 5, 16, 17):
            a = torch.arange(n)
            shards = [Shard(r, world, torch.device("cpu")) for r in range(world)]
            parts = [s.share(a) for s in shards]
            assert torch.equal(torch.cat(parts), a)
            assert [p.numel() for p in parts] == shards[0].counts(n)
            assert sum(s.lcr_weight(p.numel(), n) for s, p in zip(shards, parts)) / world == pytest.approx(1.0)
            idx = torch.cat([a, a + 100])                  # a global batch [a; a+1] with its halves told apart
            rows = [idx[s.rows(n)] for s in shards]        # each rank's anchors, then their successors
            assert all(torch.equal(r, torch.cat([p, p + 100])) for r, p in zip(rows, parts))
            assert sorted(torch.cat(rows).tolist()) == sorted(idx.tolist())   # every row on exactly one rank


L = 64


def _series():
    # 480 blocks for 10 epochs, not 120 for 20 (twice the block-epochs; the test takes ~1.5x as long, 43-58 s on
    # 2 shared cores, 85 s once at load 4): a fit's ARI then sits near 1 with a spread small enough for a 0.05
    # margin (figures in the test below). The shipped sample's 128 training blocks at its default 30 epochs
    # spread as widely as 120 here.
    return make_regime_series(L * 480, n_regimes=3, seed=17)


SEEDS = (0, 1, 2)   # the mean over three seeds is compared


def _cfg(seed: int = 0) -> DefragConfig:
    return DefragConfig().with_overrides(encoder_epochs=10, predictor_epochs=1, seed=seed)


def _fit_worker(rank: int, rendezvous: str, out: str) -> None:
    _join(rank, rendezvous)
    try:
        for seed in SEEDS:
            eng = ChronosDefragEngine(_cfg(seed)).fit(_series().data)
            if rank == 0:
                eng.save(out.format(seed=seed))
    finally:
        dist.destroy_process_group()


def _ari(z, s):
    lab, share = block_labels(s.labels, L)
    pure = share >= 0.9
    km = KMeans(3, n_init=10, random_state=0).fit_predict(z)
    return adjusted_rand_score(lab[pure], km[pure])


def test_a_two_rank_fit_recovers_the_regimes_like_one_process(spawn_safe_main, tmp_path):
    out = str(tmp_path / "ddp-{seed}.pt")
    mp.spawn(_fit_worker, args=(str(tmp_path / "rdv"), out), nprocs=WORLD, join=True)
    s = _series()
    two = [ChronosDefragEngine.load(out.format(seed=seed)) for seed in SEEDS]
    one = [ChronosDefragEngine(_cfg(seed)).fit(s.data) for seed in SEEDS]
    untrained = ChronosDefragEngine(_cfg().with_overrides(encoder_epochs=1, lr=1e-9)).fit(s.data)
    ari_two = np.array([_ari(e.block_latents, s) for e in two])
    ari_one = np.array([_ari(e.block_latents, s) for e in one])
    ari_u = _ari(untrained.block_latents, s)
    print(f"\nARI two ranks {ari_two.round(3)}, one process {ari_one.round(3)}, untrained {ari_u:.3f}")
    assert ari_one.mean() - ari_u > 0.3, (ari_one, ari_u)      # the comparison means something
    # The ranks see the one-process views and their gradients agree to 1e-5 (the test above), yet the runs
    # part by rounding (Adam's per-coordinate steps amplify it within an epoch), as switching one process to
    # torch's plain kernels does. That is per-fit variance, not a systematic loss: over seeds 0-7 the mean ARI
    # of 120 blocks at 20 epochs was 0.959 one process / 0.938 two ranks on this machine's (AVX-512) kernels and
    # 0.895 / 0.927 on the plain ones (ATEN_CPU_CAPABILITY=default): the kernels alone moved one process by
    # more than two ranks did, and single fits ranged 0.78-1.0 (sd 0.064), too wide for three seeds to resolve
    # 0.05 (the shipped sample, 30 epochs: 0.927 / 0.962 and 0.913 / 0.936, fits 0.76-1.0). At 480 blocks and
    # 10 epochs, seeds 0-7: 0.997 / 0.994 (AVX-512), 0.989 / 0.989 (plain); the 32 fits ranged 0.922-1.0 (sd
    # 0.016), and means of three drawn from them differ by more than 0.05 in 0.2 % of draws. Seeds 0-2 here
    # gave gaps of 0.005 (AVX-512) and 0.010 (plain). One process trained for 2 epochs instead of 10 scores
    # 0.84 (5 epochs: 0.995): the margin catches a fit that barely trains, not a halved schedule.
    assert abs(ari_one.mean() - ari_two.mean()) <= 0.05, (ari_two, ari_one)
    assert ari_two.mean() - ari_u > 0.5, (ari_two, ari_u)
    assert np.isfinite(two[0].predict_live(s.data[-L:]).regime_confidence)
    assert all((e.meta["world_size"], e.meta["backend"]) == (2, "gloo") for e in two)   # through save / load
    one[0].save(str(tmp_path / "one.pt"))
    back = ChronosDefragEngine.load(str(tmp_path / "one.pt")).meta
    assert (back["world_size"], back["backend"]) == (1, "none") and back["fitted_at"] == one[0].meta["fitted_at"]
