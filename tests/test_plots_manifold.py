"""Figure builders of the Manifold page: the right traces, colours, overlays and data, no browser."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from chronoslib import regimes
from chronoslib.plots import manifold, style
from tests.plot_support import block_series


def test_categorical_projection_has_one_trace_per_label_with_its_colour_and_block_ids():
    coords = np.random.default_rng(0).standard_normal((9, 2))
    labels = np.array([2, 0, 1, 0, 2, 1, 1, 0, 2])
    fig = manifold.projection_figure(coords, labels, categorical=True, color_title="regime")
    assert [t.name for t in fig.data] == ["regime 0", "regime 1", "regime 2"]     # sorted legend
    for t in fig.data:
        lab = int(t.name.split()[-1])
        ids = np.asarray(t.customdata)
        assert t.marker.color == style.regime_color(lab)
        assert np.array_equal(ids, np.flatnonzero(labels == lab))
        assert np.allclose(t.x, coords[ids, 0]) and np.allclose(t.y, coords[ids, 1])
        assert isinstance(t, go.Scatter)
    assert fig.layout.dragmode == "lasso"


def test_continuous_projection_has_a_colour_bar_and_a_grey_trace_for_missing_values():
    coords = np.random.default_rng(1).standard_normal((6, 2))
    vals = np.array([0.1, np.nan, 0.5, 0.9, np.nan, 0.3])
    fig = manifold.projection_figure(coords, vals, categorical=False, color_title="live confidence")
    missing, main = fig.data
    assert missing.name == "no value" and np.asarray(missing.customdata).tolist() == [1, 4]
    assert np.allclose(main.marker.color, [0.1, 0.5, 0.9, 0.3])
    assert main.marker.colorbar.title.text == "live confidence"


def test_projection_uses_webgl_above_threshold_and_3d_traces_for_3d():
    big = np.random.default_rng(2).standard_normal((style.WEBGL_THRESHOLD + 1, 2))
    fig = manifold.projection_figure(big, np.zeros(len(big), int), categorical=True, color_title="regime")
    assert isinstance(fig.data[0], go.Scattergl)
    fig3 = manifold.projection_figure(big[:20, :1].repeat(3, axis=1), np.arange(20), categorical=False,
                                   color_title="time")
    assert isinstance(fig3.data[0], go.Scatter3d) and len(fig3.data[0].z) == 20


def test_projection_overlays_mark_selection_focus_neighbours_and_live_points():
    coords = np.random.default_rng(3).standard_normal((10, 2))
    fig = manifold.projection_figure(coords, np.zeros(10, int), categorical=True, color_title="regime",
                                  selected=[1, 4, 5], focus=7, neighbours=[2, 3], live_xy=np.ones((2, 2)),
                                  live_color=np.array([0.2, 0.9]))
    by_name = {t.name: t for t in fig.data}
    assert np.asarray(by_name["selected (3)"].customdata).tolist() == [1, 4, 5]
    assert np.asarray(by_name["neighbours"].customdata).tolist() == [2, 3]
    assert by_name["block 7"].marker.symbol == "star"
    assert list(by_name["live windows"].marker.color) == [0.2, 0.9]


def test_blocks_from_selection_reads_customdata_in_every_shape():
    sel = {"points": [{"customdata": [5]}, {"customdata": 2}, {"customdata": [5]}, {"x": 1.0},
                      {"customdata": {"0": 7}}],          # the browser's decoding of a typed array row
           "point_indices": [0, 1, 2, 3, 4]}
    assert manifold.blocks_from_selection(sel) == [2, 5, 7]
    assert manifold.blocks_from_selection(None) == [] and manifold.blocks_from_selection({"points": []}) == []


def test_price_figure_highlights_exactly_the_selected_blocks():
    series, starts, _, _ = block_series()
    fig = manifold.price_figure(series, starts, 8, highlight=[3, 1], focus=5, neighbours=[6], split=90)
    base, hl = fig.data
    assert np.allclose(base.y, series)
    xs = [v for v in hl.x if v is not None]
    # Block 1 covers ticks 8..15 (plus tick 7 to join the line), block 3 ticks 24..31 (plus 23).
    assert xs == list(range(7, 16)) + list(range(23, 32))
    assert hl.name == "selected blocks (2)"
    assert len(fig.layout.shapes) == 3            # neighbour band, focus band, held-out span


def test_sweep_contingency_and_neighbour_figures():
    fig = manifold.sweep_figure({2: 0.3, 3: 0.6, 4: 0.4}, 3, "silhouette")
    assert list(fig.data[0].x) == [2, 3, 4] and fig.data[1].x == (3,) and "higher is better" in fig.layout.title.text
    labels, truth = np.array([0, 0, 1, 1, 1]), np.array([1, 1, 1, 0, 0])
    ct = manifold.contingency_figure(labels, truth)
    assert np.array_equal(np.asarray(ct.data[0].z), [[0, 2], [2, 1]])
    series, starts, _, _ = block_series()
    nb = manifold.neighbour_windows_figure(series, starts, 8, 4, [1, 2], [0.9, 0.5])
    assert [t.name for t in nb.data] == ["block 1 (cos 0.900)", "block 2 (cos 0.500)", "block 4 (chosen)"]
    assert np.allclose(nb.data[2].y, (series[32:40] / series[32] - 1) * 100)


def test_hover_text_names_block_span_stats_and_labels():
    series, starts, labels, _ = block_series()
    tab = regimes.block_table(starts, 8, series, pd.date_range("2024-01-01", periods=len(series), freq="min")
                              .to_numpy(), truth=labels)
    text = manifold.block_hover_text(tab, {"regime": labels})
    assert len(text) == 12
    assert text[1].startswith("<b>block 1</b> · ticks 8–15") and "2024-01-01 00:08 → 2024-01-01 00:15" in text[1]
    assert "regime 1 · truth 1" in text[1]
