"""The shipped checkpoint (sample_data/sample_model.pt) loads, matches the shipped sample data and predicts.

It is what the app opens with; if the checkpoint format or the sample CSV changes, regenerate both with
``python sample_data/make_sample_data.py`` and these tests say whether they still agree.
"""

import os

import numpy as np
import pytest

from app_pages.lib.session import DEFAULT_SAMPLE, SAMPLE_CHECKPOINT
from chronoslib import ChronosDefragEngine, LookAheadError
from chronoslib.data import load_sample


@pytest.fixture(scope="module")
def shipped():
    return ChronosDefragEngine.load(SAMPLE_CHECKPOINT), load_sample(DEFAULT_SAMPLE)


def test_the_checkpoint_is_small_and_describes_the_default_sample(shipped):
    eng, ds = shipped
    assert os.path.getsize(SAMPLE_CHECKPOINT) < 2 * 1024 ** 2
    assert eng.meta["dataset"] == DEFAULT_SAMPLE and eng.meta.get("fitted_at")
    assert eng.cfg.encoder.input_dim == ds.features.shape[1]
    assert eng.train_end_tick == ds.split                          # trained on the training span only
    n = ds.split // eng.cfg.encoder.block_len
    assert eng.block_latents.shape == (n, eng.cfg.encoder.latent_dim) and len(eng.registry) == n
    assert np.allclose(np.linalg.norm(eng.block_latents, axis=1), 1.0, atol=1e-5)
    assert sorted(eng.pseudo_timeline.tolist()) == list(range(n)) and eng.pseudo_timeline[0] == 0
    assert eng.fit_summary["final_verdict"] != "collapsed"
    assert [h["stage"] for h in eng.history].count("encoder") == eng.cfg.optim.encoder_epochs


def test_the_checkpoint_reencodes_the_shipped_csv_to_its_stored_latents(shipped):
    # Fails when the CSV or the encoder changed without regenerating the checkpoint.
    eng, ds = shipped
    z = eng.embed(ds.train)
    assert z.shape == eng.block_latents.shape
    assert np.abs(z - eng.block_latents).max() < 1e-4


def test_the_checkpoint_predicts_held_out_windows_and_refuses_look_ahead(shipped):
    eng, ds = shipped
    L = eng.cfg.encoder.block_len
    window = ds.heldout[:L]
    p = eng.predict_live(window, timestamp=ds.split)
    assert 0.0 <= p.regime_confidence <= 1.0 and np.isfinite(float(p.alpha_prediction))
    assert len(p.neighbour_indices) == eng.cfg.routing.top_k
    assert all(0 <= i < len(eng.block_latents) for i in p.neighbour_indices)
    again = eng.predict_live(window, timestamp=ds.split)
    assert float(again.alpha_prediction) == float(p.alpha_prediction)   # deterministic
    n = len(ds.heldout) // L
    batch = eng.predict_batch(ds.heldout[: n * L].reshape(n, L, -1), timestamp=ds.split)
    assert batch["alpha"].shape == (n,) and np.isclose(batch["alpha"][0], float(p.alpha_prediction), atol=1e-5)
    with pytest.raises(LookAheadError, match="anti-look-ahead"):
        eng.predict_live(ds.train[:L], timestamp=0)
    # The regimes the model retrieves for held-out windows agree with the ground truth more often than chance.
    starts = eng.block_starts[batch["neighbour_indices"][:, 0]]
    truth = np.array([np.bincount(ds.labels[ds.split + i * L: ds.split + (i + 1) * L]).argmax() for i in range(n)])
    found = np.array([np.bincount(ds.labels[s: s + L]).argmax() for s in starts])
    assert (truth == found).mean() > 0.8  # majority-class share is about 0.6


def test_shipped_evidence_matches_the_shipped_model_and_data():
    import json

    root = os.path.dirname(SAMPLE_CHECKPOINT)
    with open(os.path.join(root, "sample_evidence.json")) as f:
        res = json.load(f)
    eng = ChronosDefragEngine.load(SAMPLE_CHECKPOINT)
    ds = load_sample(DEFAULT_SAMPLE)
    assert res["dataset"] == DEFAULT_SAMPLE and res["split"] == ds.split and res["n_ticks"] == len(ds.features)
    assert res["block_len"] == eng.cfg.encoder.block_len and res["window"] == eng.cfg.predictor.window
    assert res["encoder_epochs"] == eng.cfg.optim.encoder_epochs and len(res["seeds"]) >= 3
    assert res["verdicts"] and all(isinstance(v, str) for v in res["verdicts"])
    from chronoslib.timeline import resolve_method

    assert res["ordering"] == resolve_method(eng.cfg.routing.chain_method)  # the ordering it ran, by name


def test_the_shipped_pseudo_timeline_is_the_default_ordering_of_its_latents(shipped):
    from chronoslib.timeline import build_pseudo_timeline

    eng, _ = shipped
    assert eng.cfg.routing.chain_method == "auto"
    np.testing.assert_array_equal(eng.pseudo_timeline, build_pseudo_timeline(eng.block_latents))
