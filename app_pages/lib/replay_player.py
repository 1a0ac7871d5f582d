"""The Live replay page's browser-side player: a Streamlit custom component without a build step.

Why: every change to an ``st.plotly_chart`` gives it a new element id, so the browser remounts the chart and
draws it from scratch; measured here, a page redrawing its charts that way showed ~2 frames per second and
blank charts in between. The player (``replay_player.html`` + plotly.js from the installed plotly package)
keeps its charts and updates them with ``Plotly.react``: the server sends base figures (from
``chronoslib.plots.live``) when playback starts or stops, then per-window frames in chunks of about one
second, each computed with ``predict_live`` just before it is sent; the player asks for the next chunk
before it runs dry (its value: ``{"request": chunk_id}``) and reports ``{"finished": chunk_id}`` at the end.
Not a page (it is not listed in ``st.navigation``).

Concurrency: with Streamlit's fast reruns a click (e.g. Pause) starts a new script thread while the previous
run (a chunk request) may still be stepping or building frames, so both threads touch the same
``ReplaySession``. ``lock(rs)`` serialises every mutation and every render of one session's replay, and
``render`` reads the replay through one ``snapshot`` (position read once; alerts derived from the confidences
up to it), so a frame never indexes an array built at another position.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import weakref
from typing import Any

import numpy as np
import plotly
import streamlit.components.v1 as components

from chronoslib import drift
from chronoslib.plots.live import gauges, neighbour_marker_trace, neighbour_marks, replay_panel
from chronoslib.plots.style import date_ms, is_time
from chronoslib.replay import ReplaySession

LIVE_POINTS = 1000  # context lines in the player are strided to this many points: each redraw costs less
_HTML = os.path.join(os.path.dirname(os.path.abspath(__file__)), "replay_player.html")


def _component_dir() -> str:
    """A folder with index.html and plotly.min.js (copied from the plotly package, so nothing is vendored)."""
    with open(_HTML, "rb") as f:
        html = f.read()
    tag = hashlib.sha1(html + plotly.__version__.encode()).hexdigest()[:12]
    d = os.path.join(tempfile.gettempdir(), f"chronos_replay_player_{tag}")
    if not os.path.exists(os.path.join(d, "plotly.min.js")):
        tmp = tempfile.mkdtemp(prefix="chronos_player_")
        with open(os.path.join(tmp, "index.html"), "wb") as f:
            f.write(html)
        shutil.copy(os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js"), tmp)
        try:
            os.replace(tmp, d)
        except OSError:  # another session made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return d


_player = components.declare_component("replay_player", path=_component_dir())
_locks: weakref.WeakKeyDictionary[ReplaySession, threading.RLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def lock(rs: ReplaySession) -> threading.RLock:
    """The lock of one replay session: hold it while stepping, rewinding, resetting, publishing or rendering."""
    with _locks_guard:
        lk = _locks.get(rs)
        if lk is None:
            lk = _locks[rs] = threading.RLock()
        return lk


def snapshot(rs: ReplaySession, threshold: float, patience: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(position, streak, alerts): the windows done, read once, and the alert rule over exactly those windows;
    every frame index below is < position and every array has that length."""
    p = int(rs.position)
    if not p:
        return 0, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    al = drift.low_confidence_alert(rs.confidence[:p].copy(), threshold, patience)
    return p, np.asarray(al["streak"]), np.asarray(al["alerts"])


def frame(rs: ReplaySession, i: int, streak: np.ndarray, alerts: np.ndarray, regimes: dict[str, np.ndarray],
          train_series: np.ndarray | None, train_timestamps: np.ndarray | None) -> dict[str, Any]:
    """One window's numbers for the player (plain JSON): gauges, panel point, metrics, neighbour rows/marks."""
    rows = rs.neighbour_table(i, regimes=regimes, train_timestamps=train_timestamps)
    f: dict[str, Any] = {
        "i": int(i), "s": int(rs.starts[i]), "tick": rs.tick(i), "conf": float(rs.confidence[i]),
        "alpha": float(rs.alpha[i]), "online": float(rs.online_confidence[i]) if rs.online else None,
        "lat": float(rs.latency_ms[i]), "run": int(streak[i]), "alert": bool(alerts[i]),
        "nb": [[str(v) for v in r.values()] for r in rows]}
    if train_series is not None:
        f["mk"] = neighbour_marker_trace(train_series, rs.engine.block_starts, rs.block_len,
                                                    rs.neighbour_ids[i], rs.neighbour_weights[i],
                                                    regimes.get("cluster"), _train_times(train_series,
                                                                                         train_timestamps))
    return f


def _train_times(train_series: np.ndarray, train_timestamps: np.ndarray | None) -> np.ndarray | None:
    """The training span's timestamps (one per tick of ``train_series``) when they are datetimes, else None."""
    if train_timestamps is None or not is_time(train_timestamps) or len(train_timestamps) < len(train_series):
        return None
    return np.asarray(train_timestamps)[: len(train_series)]


def render(rs: ReplaySession, *, playing: bool, fresh: bool, chunk_id: int, frames_from: int, speed: float,
           threshold: float, patience: int, regimes: dict[str, np.ndarray], replay_series: np.ndarray,
           replay_label: str, train_series: np.ndarray | None, train_label: str,
           train_timestamps: np.ndarray | None, key: str = "rp_player") -> Any:
    """Draw the player. ``fresh``: send base figures of the state up to the latest predicted window (on start,
    pause, step, reset); ``frames_from``: first window index to send as frames (the chunk just predicted).
    Holds the replay's lock (re-entrant: the page already holds it) so no other run moves it meanwhile."""
    with lock(rs):
        return _render(rs, playing=playing, fresh=fresh, chunk_id=chunk_id, frames_from=frames_from, speed=speed,
                       threshold=threshold, patience=patience, regimes=regimes, replay_series=replay_series,
                       replay_label=replay_label, train_series=train_series, train_label=train_label,
                       train_timestamps=train_timestamps, key=key)


def _render(rs: ReplaySession, *, playing: bool, fresh: bool, chunk_id: int, frames_from: int, speed: float,
            threshold: float, patience: int, regimes: dict[str, np.ndarray], replay_series: np.ndarray,
            replay_label: str, train_series: np.ndarray | None, train_label: str,
            train_timestamps: np.ndarray | None, key: str) -> Any:
    p, streak, alerts = snapshot(rs, threshold, patience)
    i = p - 1
    args: dict[str, Any] = {
        "chunk_id": int(chunk_id), "playing": bool(playing), "fresh": bool(fresh), "speed": float(speed),
        "n_windows": rs.n_windows, "tick0": int(rs.source.start_tick), "block_len": rs.block_len,
        "threshold": float(threshold), "patience": int(patience), "more": not rs.done,
        "frames": [], "current": None, "gauges": None, "panel": None, "marks": None, "series": None, "times": None,
        "idx": None, "nb_cols": None}
    amax = float(np.nanmax(np.abs(rs.alpha[:p]))) if p else 0.2
    # While playing the alpha gauge's range is fixed at start (alpha seen so far, with headroom).
    args["alpha_range"] = max(0.25, round(1.5 * amax, 2))
    if p:
        args["nb_cols"] = list(rs.neighbour_table(i, regimes=regimes, train_timestamps=train_timestamps)[0])
    td = frame if p else None
    if fresh:
        args["series"] = np.asarray(replay_series, dtype=np.float64).round(6).tolist()
        # With timestamps the panel is on a date axis: the player maps a tick to its time (ms) with this list.
        replay_times = rs.source.timestamps if is_time(rs.source.timestamps) else None
        args["times"] = None if replay_times is None else date_ms(replay_times).tolist()
        ticks = rs.source.start_tick + rs.starts[:p]
        cur = i if p else None
        args["gauges"] = gauges(rs.confidence[cur] if p else None, rs.alpha[cur] if p else None,
                                           threshold, args["alpha_range"],
                                           (rs.online_confidence[cur] if p else float("nan")) if rs.online
                                           else None)
        args["gauges"] = args["gauges"].to_json()
        # The window trace must exist for the player to move it: before the first window, draw window 0.
        panel = replay_panel(replay_series, int(rs.starts[max(cur or 0, 0)]), rs.block_len,
                                        rs.source.start_tick, ticks, rs.confidence[:p], threshold, alerts,
                                        rs.online_confidence[:p] if rs.online else None, replay_label,
                                        max_points=LIVE_POINTS, times=replay_times)
        args["panel"] = panel.to_json()
        names = [t.name for t in panel.data]
        args["idx"] = {"window": names.index("current window"), "frozen": names.index("frozen registry"),
                       "alerts": names.index("re-fit alert"),
                       "online": names.index("online registry") if rs.online else None,
                       "online_gauge": 1 if rs.online else None}
        if train_series is not None:
            ids = rs.neighbour_ids[cur] if p else []
            ws = rs.neighbour_weights[cur] if p else []
            args["marks"] = neighbour_marks(train_series, rs.engine.block_starts, rs.block_len, ids, ws,
                                                       regimes.get("cluster"), train_label, height=300,
                                                       max_points=LIVE_POINTS,
                                                       times=_train_times(train_series, train_timestamps))
            args["marks"] = args["marks"].to_json()
        if td is not None:
            args["current"] = td(rs, cur, streak, alerts, regimes, train_series, train_timestamps)
    if playing and td is not None:
        args["frames"] = [td(rs, j, streak, alerts, regimes, train_series, train_timestamps)
                          for j in range(min(frames_from, p), p)]
    return _player(key=key, default=None, **args)
