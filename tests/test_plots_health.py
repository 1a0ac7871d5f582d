"""Representation-health figure builders (collapse, similarities, drift): valid plotly with the data they were given."""

import numpy as np
import pytest

from chronoslib import drift, metrics
from chronoslib.plots import health
from tests.plot_support import A, valid


def test_collapse_and_similarity_figures():
    hist = [{"stage": "encoder", "epoch": e, "entropy": 1.0 + e / 10, "entropy_target": 1.7, "mean_cos": 0.3,
             "eff_rank": 6.0} for e in range(1, 4)]
    fig = valid(health.collapse_figure(metrics.collapse_curves(hist)))
    assert [tr.name for tr in fig.data] == ["entropy", "TER target", "mean cos", "effective rank"]
    assert {sh.y0 for sh in fig.layout.shapes} >= {metrics.COLLAPSE_MEAN_COS, metrics.COLLAPSE_EFF_RANK}
    sims = np.array([0.1, 0.2, 0.3])
    h = valid(health.similarity_histogram(sims))
    assert A(h.data[0].x) == [0.1, 0.2, 0.3] and tuple(h.layout.xaxis.range) == (-1, 1)
    with pytest.raises(ValueError, match="no similarities"):
        health.similarity_histogram(np.array([]))


def test_drift_figure_marks_drifting_windows():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((60, 4))
    z = np.concatenate([rng.standard_normal((10, 4)), rng.standard_normal((10, 4)) + 2])
    tl = drift.drift_timeline(ref, z, window=4)
    ticks = 1000 + 16 * np.arange(20)
    fig = valid(health.drift_figure(ticks, tl, np.full(20, 0.8), np.full((20, 3), 500.0), 0.7))
    drift_pts = [tr for tr in fig.data if tr.name == "drift"]
    assert drift_pts and len(A(drift_pts[0].x)) == int(tl["drift"].sum())
    assert set(A(drift_pts[0].x)) <= set(ticks[tl["end"]].tolist())
    strict = [tr for tr in fig.data if tr.name == "drifted level"]      # dotted, one per statistic's panel
    assert len(strict) == 2 and A(strict[0].y) == tl["centroid_threshold_drifted"].tolist()
