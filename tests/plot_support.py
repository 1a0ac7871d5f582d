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
