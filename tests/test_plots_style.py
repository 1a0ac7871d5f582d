"""The shared figure style: one regime palette used by every page that colours regimes (Manifold, Timeline, Live
replay), and the one stride helper that thins long series."""

import os
import re

import numpy as np

from chronoslib.plots import live, manifold, style, timeline
from tests.plot_support import barcode_colours

PLOTS_DIR = os.path.dirname(style.__file__)


def test_regime_colors_cycle_through_the_palette():
    assert style.regime_color(0) == style.PALETTE[0]
    assert style.regime_color(3) == style.PALETTE[3]
    assert style.regime_color(len(style.PALETTE) + 1) == style.PALETTE[1]


def test_manifold_timeline_and_live_replay_colour_regime_k_the_same():
    labels = np.array([0, 1, 2, 3, 1, 0, 2, 3])
    proj = manifold.projection_figure(np.random.default_rng(0).standard_normal((8, 2)), labels, categorical=True,
                                      color_title="regime")
    on_manifold = {int(t.name.split()[-1]): t.marker.color for t in proj.data}
    series, starts = np.linspace(1.0, 2.0, 8 * 4), np.arange(8) * 4
    tl = timeline.timeline_figure(series, starts, 4, np.argsort(labels, kind="stable"), labels)
    chrono_barcode = next(t for t in tl.data if t.name == "chrono barcode")
    on_timeline = dict(zip(labels.tolist(), barcode_colours(chrono_barcode)))
    marks = live.neighbour_marker_trace(series, starts, 4, ids=list(range(8)), weights=[0.1] * 8, regimes=labels)
    on_live = dict(zip(labels.tolist(), marks["marker"]["color"]))
    for k in range(4):
        assert on_manifold[k] == on_timeline[k] == on_live[k] == style.regime_color(k)


def test_no_other_plots_module_defines_colours_per_regime_or_its_own_stride():
    for name in os.listdir(PLOTS_DIR):
        if not name.endswith(".py") or name == "style.py":
            continue
        src = open(os.path.join(PLOTS_DIR, name), encoding="utf-8").read()
        assert not re.search(r"^(PALETTE|REGIME_COLOU?RS|MAX_LINE_POINTS|HIGHLIGHT)\s*=", src, re.M), name
        assert not re.search(r"^def (_?stride|regime_colou?r)\(", src, re.M), name


def test_stride_keeps_at_most_max_points_and_strided_ticks_keep_the_last_tick():
    assert style.stride(10, 4) == 3 and style.stride(8, 4) == 2 and style.stride(3, 4) == 1 and style.stride(0, 4) == 1
    assert style.stride(10, 0) == 10                                  # a zero budget keeps one point per series
    for n, m in ((4000, 4000), (4001, 4000), (1_000_000, 4000), (17, 5)):
        assert len(range(0, n, style.stride(n, m))) <= m
    assert style.strided_ticks(10, 3).tolist() == [0, 3, 6, 9]
    assert style.strided_ticks(11, 3).tolist() == [0, 3, 6, 9, 10]
