"""Helpers for the figure tests: read plotly's packed arrays, rebuild a figure with validation on."""

import base64

import numpy as np
import plotly.graph_objects as go


def A(v) -> list:
    """A trace array as a list (plotly >= 6 stores numpy arrays as base64 'bdata' dicts)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def valid(fig: go.Figure) -> go.Figure:
    """Rebuild with plotly's validation on: the fast builders skip it, so a bad property must fail here."""
    return go.Figure(fig.to_dict())


def block_series(n: int = 12, block_len: int = 8, seed: int = 0):
    """A positive random-walk series of n blocks, their starts, three interleaved labels and the label-sorted order."""
    rng = np.random.default_rng(seed)
    series = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n * block_len + 5)))
    starts = np.arange(n) * block_len
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 2, 1, 0, 1, 2])[:n]
    order = np.argsort(labels, kind="stable")
    return series, starts, labels, order


def barcode_colours(heatmap: go.Heatmap) -> list[str]:
    """The colour of each cell of a one-row barcode heatmap: the stop of its stepped colour scale z falls in."""
    stops = heatmap.colorscale
    out = []
    for z in np.asarray(heatmap.z)[0]:
        u = (z - heatmap.zmin) / (heatmap.zmax - heatmap.zmin)
        out.append(next(c for (lo, c), (hi, _) in zip(stops[::2], stops[1::2]) if lo <= u <= hi))
    return out
