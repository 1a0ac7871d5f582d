"""Projections: content keys, PCA against an SVD-free oracle, the cache, live-point placement, the UMAP warm-up
state machine (with a stand-in fit) and one tiny real UMAP."""

import numpy as np
import pytest

from chronoslib import projection
from chronoslib.errors import DataError


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clusters(n_per=15, d=8, seed=0):
    """Three tight groups of unit vectors around orthogonal directions: (3 * n_per, d), labels."""
    rng = np.random.default_rng(seed)
    centres = np.eye(d)[:3]
    x = np.concatenate([c + 0.05 * rng.standard_normal((n_per, d)) for c in centres])
    return _unit(x).astype(np.float32), np.repeat(np.arange(3), n_per)


def test_latents_key_changes_on_any_single_value_edit_and_on_shape():
    z = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
    k = projection.latents_key(z)
    assert projection.latents_key(z.copy()) == k
    for i, j in [(0, 0), (137, 5), (199, 15)]:
        z2 = z.copy()
        z2[i, j] += 1e-6
        assert projection.latents_key(z2) != k
    assert projection.latents_key(z.reshape(400, 8)) != k
    assert projection.latents_key(z.astype(np.float64)) != k


def test_pca_matches_eigenvectors_of_the_covariance_with_fixed_signs():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((60, 5)) * np.array([5.0, 2.0, 1.0, 0.5, 0.1])
    out = projection.pca(z, 3)
    assert out.shape == (60, 3) and out.dtype == np.float32
    # Oracle: eigen-decomposition of the covariance of the unit rows (no SVD).
    x = _unit(z)
    x = x - x.mean(axis=0)
    vals, vecs = np.linalg.eigh(x.T @ x)
    top = vecs[:, np.argsort(vals)[::-1][:3]]
    ref = x @ top
    for j in range(3):
        assert np.allclose(np.abs(out[:, j]), np.abs(ref[:, j]), atol=1e-5)
        assert out[np.argmax(np.abs(out[:, j])), j] > 0       # sign convention
    # Variance decreases along the components.
    v = out.var(axis=0)
    assert v[0] >= v[1] >= v[2]


def test_pca_pads_missing_components_with_zeros():
    z = _unit(np.random.default_rng(2).standard_normal((3, 2)))
    out = projection.pca(z, 3)
    assert out.shape == (3, 3)
    assert np.allclose(out[:, 2], 0.0)


def test_project_returns_read_only_coordinates_and_its_compute_time():
    z, _ = _clusters()
    a = projection.project(z, "pca", 2)
    assert a.coords.shape == (len(z), 2) and not a.coords.flags.writeable
    assert a.method == "pca" and a.dim == 2 and a.seconds >= 0
    assert np.array_equal(projection.project(z.copy(), "pca", 2).coords, a.coords)


@pytest.mark.parametrize("kwargs, match", [({"method": "tsne"}, "projection method"), ({"dim": 4}, "2 or 3")])
def test_project_rejects_bad_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        projection.project(np.eye(6), **kwargs)


def test_projections_refuse_nan_latents_and_umap_refuses_tiny_inputs():
    z = np.eye(6)
    z[2, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        projection.pca(z)
    with pytest.raises(DataError, match="at least 5 blocks"):
        projection.umap_embed(np.eye(4))


def test_place_points_is_the_weighted_mean_of_neighbour_coordinates():
    coords = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    idx = np.array([[0, 1, 2], [1, -1, 2], [-1, -1, -1], [0, 1, 2]])
    w = np.array([[1.0, 1.0, 2.0], [3.0, 9.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    out = projection.place_points(coords, idx, w)
    assert np.allclose(out[0], [(0 + 2 + 0) / 4, (0 + 0 + 8) / 4])
    assert np.allclose(out[1], [(3 * 2 + 0) / 4, (0 + 4) / 4])      # the live entry (-1) is ignored
    assert np.isnan(out[2]).all()                                    # nothing to place it by
    assert np.allclose(out[3], coords.mean(axis=0))                  # zero weights: plain mean
    with pytest.raises(DataError, match="same shape"):
        projection.place_points(coords, idx, w[:, :2])
    with pytest.raises(DataError, match="out of range"):
        projection.place_points(coords, [[5]], [[1.0]])


def test_warmup_runs_once_in_a_background_thread_and_reports_failures(monkeypatch):
    calls = []
    monkeypatch.setattr(projection, "umap_embed", lambda *a, **k: calls.append(a[0].shape) or np.zeros((1, 2)))
    w = projection.UmapWarmup(n_points=50, n_dims=4)
    assert w.state == "idle" and not w.ready and w.elapsed() == 0.0
    w.start().start()
    assert w.wait(10) and w.state == "ready" and w.seconds >= 0
    assert calls == [(50, 4)]                                        # idempotent start: one fit

    def boom(*a, **k):
        raise RuntimeError("numba exploded")

    monkeypatch.setattr(projection, "umap_embed", boom)
    bad = projection.UmapWarmup().start()
    assert not bad.wait(10)
    assert bad.state == "failed" and "numba exploded" in bad.error


def test_tiny_umap_keeps_separated_groups_apart():
    z, lab = _clusters(n_per=12)
    p = projection.project(z, "umap", 2, seed=3)
    assert p.coords.shape == (36, 2) and np.isfinite(p.coords).all()
    # Each point's nearest projected neighbour belongs to its own group.
    d = ((p.coords[:, None, :] - p.coords[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (lab[d.argmin(axis=1)] == lab).mean() > 0.95


def test_exact_knn_lists_each_row_itself_first_then_its_nearest_rows_like_a_brute_force_sort():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    idx, dist = projection.exact_knn(x, 6, chunk=64)                 # several chunks
    d = np.sqrt(np.clip(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0, None))
    np.fill_diagonal(d, -1.0)
    want = np.argsort(d, axis=1, kind="stable")[:, :6]
    assert np.array_equal(idx[:, 0], np.arange(300)) and np.all(dist[:, 0] == 0)
    assert np.array_equal(idx, want)
    assert np.allclose(dist[:, 1:], np.take_along_axis(d, want, axis=1)[:, 1:], atol=1e-3)
    assert np.all(np.diff(dist, axis=1) >= 0)
