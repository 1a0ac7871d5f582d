"""Model views (chronoslib.views): what they hold, that they round-trip through their npz, and that a file of
other latents or a malformed one is refused. UMAP is replaced by PCA here (no numba compilation in tests); the
sampling and placement around it are real."""

import numpy as np
import pytest

from chronoslib import metrics, projection, regimes, timeline, views
from chronoslib.errors import DataError
from chronoslib.synthetic import regime_latents


@pytest.fixture(autouse=True)
def _pca_for_umap(monkeypatch):
    monkeypatch.setattr(projection, "umap_embed", lambda x, d, *a, **k: projection.pca(x, d))


@pytest.fixture(scope="module")
def z():
    return regime_latents(300, dim=16, n_regimes=3, seed=4)


@pytest.fixture(scope="module")
def computed(z):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(projection, "umap_embed", lambda x, d, *a, **k: projection.pca(x, d))
        return views.views_of_latents(z)


def test_views_hold_valid_orderings_finite_coordinates_and_the_pages_own_numbers(z, computed):
    v, n = computed, len(z)
    assert v.key == projection.latents_key(z) and v.n_blocks == n
    assert v.coords2.shape == (n, 2) and v.coords3.shape == (n, 3)
    assert np.isfinite(v.coords2).all() and np.isfinite(v.coords3).all()
    assert not v.coords2.flags.writeable
    assert set(v.orderings) == set(timeline.METHODS[:3])
    for m, o in v.orderings.items():
        assert o[0] == 0 and np.array_equal(np.sort(o), np.arange(n))
        assert np.array_equal(o, timeline.build_pseudo_timeline(z, method=m))     # what the Timeline page asks
    assert v.lower_bound == pytest.approx(metrics.mst_lower_bound(z))
    ref = regimes.cluster_regimes(z)                                              # the pages' default settings
    assert v.regime.k == ref.k and np.array_equal(v.regime.labels, ref.labels)
    assert set(v.seconds) == set(views.STEPS)


def test_the_engines_own_pseudo_timeline_stands_in_for_its_method_only(z):
    fake = np.arange(len(z))          # a stand-in that build_pseudo_timeline would never return
    got = views.orderings(z, as_trained=fake, trained_method="auto")
    assert np.array_equal(got["refined"], fake)                                   # "auto" is refined
    assert np.array_equal(got["greedy"], timeline.build_pseudo_timeline(z, method="greedy"))
    other = views.orderings(z, as_trained=fake, trained_method="auto", approx_threshold=10)
    assert not np.array_equal(other["refined"], fake)                             # another threshold: recomputed


def test_views_round_trip_through_their_file(tmp_path, computed):
    path = str(tmp_path / "v.npz")
    views.save_views(path, computed)
    back = views.load_views(path, computed.key)
    assert back.key == computed.key and back.method == computed.method
    assert np.array_equal(back.coords2, computed.coords2) and np.array_equal(back.coords3, computed.coords3)
    assert np.array_equal(back.sample, computed.sample) and back.lower_bound == computed.lower_bound
    for m in computed.orderings:
        assert np.array_equal(back.orderings[m], computed.orderings[m])
    r, s = back.regime, computed.regime
    assert np.array_equal(r.labels, s.labels) and r.k == s.k and r.scores == s.scores
    assert r.criterion == s.criterion and np.allclose(r.centers, s.centers) and r.silhouette == s.silhouette
    assert back.seconds == computed.seconds


def test_views_of_other_latents_are_refused(tmp_path, computed):
    path = str(tmp_path / "v.npz")
    views.save_views(path, computed)
    other = projection.latents_key(regime_latents(300, dim=16, seed=5))
    with pytest.raises(DataError, match="other latents"):
        views.load_views(path, other)


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as f:
        a = {k: f[k] for k in f.files}
    for k, v in changes.items():
        if v is None:
            a.pop(k)
        else:
            a[k] = v
    np.savez(path, **a)


@pytest.mark.parametrize("changes, match", [
    ({"order_greedy": None}, "'order_greedy' is missing"),
    ({"order_refined": np.arange(300)[::-1]}, "order_refined should be a permutation"),
    ({"order_regime": np.zeros(300, np.int64)}, "order_regime should be a permutation"),
    ({"coords2": np.full((300, 2), np.nan, np.float32)}, "finite"),
    ({"coords3": np.zeros((299, 3), np.float32)}, r"\(300, 3\)"),
    ({"regime_labels": np.full(300, 99)}, "regime labels"),
    ({"format": np.array(7)}, "format 7"),
    ({"key": np.arange(3)}, "'key' should be"),
])
def test_malformed_views_files_are_refused_naming_the_field(tmp_path, computed, changes, match):
    path = str(tmp_path / "v.npz")
    views.save_views(path, computed)
    _rewrite(path, **changes)
    with pytest.raises(DataError, match=match):
        views.load_views(path)


def test_a_file_that_is_no_npz_or_needs_pickle_is_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(DataError, match="cannot be read"):
        views.load_views(str(bad))
    obj = tmp_path / "obj.npz"
    np.savez(obj, format=np.array(1), key=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError):
        views.load_views(str(obj))


def test_above_the_full_limit_umap_sees_a_sample_and_the_rest_sit_at_their_sampled_neighbours(z):
    coords, sample, method = views.embed(z, (2,), sample_size=60, full_max=100, place_k=4)
    assert method == "umap" and len(sample) == 60 and np.array_equal(sample, np.unique(sample))
    x = z / np.linalg.norm(z, axis=1, keepdims=True)
    sub = projection.pca(x[sample], 2)
    assert np.allclose(coords[2][sample], sub, atol=1e-5)          # sampled blocks keep their own place
    # Oracle: brute-force top-4 by cosine among the sample, weighted mean of their coordinates.
    sims = x @ x[sample].T                                         # (N, 60)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :4]
    w = np.clip(np.take_along_axis(sims, top, axis=1), 0, None)
    want = (w[..., None] * sub[top]).sum(1) / w.sum(1, keepdims=True)
    rest = np.setdiff1d(np.arange(len(z)), sample)
    assert np.allclose(coords[2][rest], want[rest], atol=1e-4)


def test_below_the_full_limit_every_block_is_in_the_umap(z):
    coords, sample, _ = views.embed(z, (2, 3))
    assert np.array_equal(sample, np.arange(len(z)))
    assert np.allclose(coords[3], projection.pca(z, 3), atol=1e-5)


def test_a_sampled_clustering_gives_every_block_its_nearest_regime_centre():
    z, truth = regime_latents(600, dim=16, n_regimes=3, spread=0.2, seed=1, return_labels=True)
    res = views.cluster(z, k=3, full_max=150)          # fitted on 150 blocks, 450 assigned
    x = z / np.linalg.norm(z, axis=1, keepdims=True)
    assert res.labels.shape == (len(z),) and res.k == 3
    assert metrics.agreement(res.labels, truth)["ari"] > 0.95
    assert np.array_equal(views.cluster(z, k=3, full_max=600).labels, regimes.cluster_regimes(z, k=3).labels)
    # Each block's label is its most similar centre (centres are member means, so allow boundary blocks).
    assert np.mean(np.argmax(x @ res.centers.T, axis=1) == res.labels) > 0.97
    first = [int(res.labels[np.flatnonzero(res.labels == c)[0]]) for c in range(3)]
    assert sorted(first) == first                                   # numbered by first appearance


def test_relabelling_by_volatility_matches_clustering_with_it(z):
    vol = np.random.default_rng(2).random(len(z))
    with_vol = regimes.cluster_regimes(z, block_vol=vol)
    later = regimes.relabel(regimes.cluster_regimes(z), vol)
    assert np.array_equal(later.labels, with_vol.labels) and later.k == with_vol.k
    assert np.allclose(later.centers, with_vol.centers) and np.allclose(later.regime_vol, with_vol.regime_vol)
    assert later.silhouette == with_vol.silhouette and later.scores == with_vol.scores
    with pytest.raises(DataError, match="block_vol"):
        regimes.relabel(with_vol, vol[:-1])
