"""Evidence figures: bars carry the summary means and intervals, seeds are drawn, colours follow the sign of the
interval, and missing prices / labels are said rather than drawn empty."""

import math

import pytest

from chronoslib.plots.evidence import (
    BAD,
    GOOD,
    NEUTRAL,
    error_figure,
    reduction_figure,
    regime_figure,
    seed_table,
    spearman_figure,
)
from tests.evidence_support import ARMS, ERR, PROTOCOLS, RHO, result


def test_error_figure_bars_carry_means_and_intervals_with_seed_dots():
    res = result(ERR, [50, 43, 42], [60, 61, 62])
    fig = error_figure(res)
    bars = [t for t in fig.data if t.type == "bar"]
    dots = [t for t in fig.data if t.type == "scatter"]
    assert [b.name for b in bars] == ["pseudo-timeline", "chronological", "random"]
    s = res["summary"]["error"]
    for b, arm in zip(bars, ARMS):
        assert list(b.y) == pytest.approx([s[p][arm]["mean"] for p in PROTOCOLS])
        assert list(b.error_y.array) == pytest.approx([s[p][arm]["ci"] for p in PROTOCOLS])
    assert all(len(d.y) == 2 * 3 for d in dots)            # 2 protocols x 3 seeds
    assert {round(float(sh.y0), 3) for sh in fig.layout.shapes} == {0.5, 0.4}   # persistence and train mean lines


def test_reduction_figure_colours_by_interval_sign():
    res = result(ERR, [50, 43, 42], [-1, 2, 1])
    fig = reduction_figure(res)
    bar = fig.data[0]
    assert len(bar.x) == 4
    assert list(bar.marker.color) == [GOOD, NEUTRAL, GOOD, NEUTRAL]
    res_bad = result(ERR, [-50, -43, -42], [-1, 2, 1])
    assert reduction_figure(res_bad).data[0].marker.color[0] == BAD
    m = res["summary"]["error_reduction_pct"]["routed"]["vs_chrono"]["mean"]
    assert bar.x[2] == pytest.approx(m) and math.isclose(m, 45.0)


def test_spearman_and_regime_figures_and_their_empty_states():
    res = result(ERR, [50, 43, 42], [1, 2, 1], rho=RHO)
    sp = spearman_figure(res)
    assert [t.name for t in sp.data if t.type == "bar"] == ["pseudo-timeline", "chronological", "random"]
    assert list(sp.data[0].y) == pytest.approx([0.25, 0.25])
    rg = regime_figure(res)
    bars = [t for t in rg.data if t.type == "bar"]
    assert len(bars) == 6 and bars[0].y[0] == pytest.approx(res["summary"]["regimes"]["train"]["latent_kmeans"]
                                                               ["ari"]["mean"])
    assert sum(b.showlegend for b in bars) == 3
    empty = result(ERR, [50, 43, 42], [1, 2, 1], rho=None, regimes=False)
    assert "no price column" in spearman_figure(empty).layout.annotations[0].text
    assert any("no ground-truth labels" in a.text for a in regime_figure(empty).layout.annotations)


def test_seed_table_has_one_row_per_seed():
    rows = seed_table(result(ERR, [50, 43, 42], [1, 2, 1], rho=RHO))
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert rows[1]["MSE pseudo (routed)"] == 0.12 and rows[2]["rho chrono (routed)"] == -0.1
