"""Live replay page: the held-out span (or an upload, optionally with a simulated break) window by window.

Controls: play / pause / step / +1 block / to end / reset, speed in windows per second. The live view is a
browser-side player (``app_pages/lib/replay_player.py``): Streamlit remounts a plotly chart on every change, which
managed ~2 redraws per second here, while the player updates its charts in place at up to 25 per second. While
playing, the server predicts the next second of windows with ``predict_live`` each time the player asks.
The replay itself is a ``chronoslib.replay.ReplaySession`` kept in session state; the last
window's neighbours and the per-window records are published under session keys ``replay_neighbours``,
``replay_confidence``, ``replay_latent`` and ``replay_records`` for the manifold page.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from app_pages.lib import replay_player, session
from chronoslib import replay
from chronoslib.features import source_columns
from chronoslib.regimes import reference_series

session.guard()

SOURCES = ("Held-out span", "Held-out span with a simulated structural break", "Uploaded continuation")


def settings_defaults(eng: Any) -> dict[str, Any]:
    bl = eng.cfg.encoder.block_len
    stride = max(1, bl // 8)
    return {"source": SOURCES[0], "stride": stride, "speed": 25, "online": False, "forgetting": 0.995,
            "threshold": replay.suggested_threshold(eng), "patience": max(3, 2 * bl // stride),
            "break_at": 0.5, "break_vol": 1.5, "break_offset": 1.0, "model": session.model_id()}


MODEL_SETTINGS = ("stride", "threshold", "patience", "model")   # derived from the model (block_len, confidence)


def settings_for(eng: Any) -> dict[str, Any]:
    """The replay settings, with the model-derived ones (re-fit threshold, stride, patience) re-derived when
    they were chosen for a previous model; the other choices are kept."""
    s = session.get("replay_settings")
    fresh = settings_defaults(eng)
    if s is None:
        return fresh
    if s.get("model") != fresh["model"]:
        s = {**s, **{k: fresh[k] for k in MODEL_SETTINGS}}
        session.put("replay_settings_note", f"The re-fit threshold ({fresh['threshold']:.2f}), stride and alert "
                                            "patience were reset to the current model's defaults.")
    return s


def build_source(s: dict[str, Any], ds: Any, eng: Any, upload: Any) -> replay.ReplaySource:
    if s["source"] == SOURCES[2]:
        if upload is None:
            raise ValueError("upload a CSV or Parquet file with the model's feature columns "
                             f"({', '.join(ds.feature_names)}) to replay it")
        return replay.load_continuation(upload, ds.feature_names, eng.train_end_tick, data_cfg=eng.cfg.data)
    src = replay.heldout_source(ds, eng)
    if s["source"] == SOURCES[1]:
        src = replay.with_structural_break(src, s["break_at"], s["break_vol"], s["break_offset"])
    return src


def regimes_for(eng: Any, ds: Any, compute: bool = True) -> dict[str, np.ndarray] | None:
    """Block regimes, computed once per model and dataset (a clustering sweep takes ~1.6 s); with
    ``compute=False`` None until then."""
    key = (session.model_id(), session.data_id())
    cached = session.get("replay_regimes")
    if cached is None or cached[0] != key:
        if not compute:
            return None
        try:
            cached = (key, replay.block_regimes(eng, ds))
        except (ValueError, RuntimeError):
            cached = (key, {})
        session.put("replay_regimes", cached)
    return cached[1]


def publish(rs: replay.ReplaySession) -> None:
    """The last window's neighbours and all records, for the manifold page to mark and colour."""
    i = rs.current()
    session.put("replay_neighbours", [int(b) for b in rs.neighbour_ids[i] if b >= 0] if i >= 0 else [])
    session.put("replay_confidence", float(rs.confidence[i]) if i >= 0 else None)
    session.put("replay_latent", rs.latents[i].tolist() if i >= 0 else None)
    session.put("replay_records", rs.records())


# ---------------------------------------------------------------------- page
st.title("Live replay")
eng, ds = session.engine(), session.dataset()
if eng is None:
    st.info("No model yet: train one on the **Train** page or load a checkpoint there.")
    st.stop()

s = settings_for(eng)
if note := session.get("replay_settings_note"):
    st.caption(note)
    session.put("replay_settings_note", None)
with st.expander("Replay settings", expanded=False):  # constant: a changing value re-collapses it
    c1, c2, c3 = st.columns(3)
    s["source"] = c1.radio("What to replay", SOURCES, index=SOURCES.index(s["source"]), key="rp_source")
    upload = None
    if s["source"] == SOURCES[2]:
        upload = c1.file_uploader("Continuation (CSV / Parquet)", type=["csv", "parquet"], key="rp_upload",
                                  help=f"Columns {', '.join(source_columns(eng.cfg.data) or ds.feature_names)}; "
                                      "optional price, "
                                      "timestamp, regime.")
    elif s["source"] == SOURCES[1]:
        s["break_at"] = c1.slider("Break at (share of the span)", 0.0, 0.9, float(s["break_at"]), 0.05, key="rp_bat")
        s["break_vol"] = c1.slider("Volatility × after the break", 0.5, 4.0, float(s["break_vol"]), 0.1,
                                   key="rp_bvol")
        s["break_offset"] = c1.slider("Level shift after the break", -2.0, 2.0, float(s["break_offset"]), 0.1,
                                      key="rp_boff")
    bl = eng.cfg.encoder.block_len
    s["stride"] = c2.slider("Ticks between windows (stride)", 1, bl, int(min(s["stride"], bl)), key="rp_stride",
                            help=f"Each live window is block_len = {bl} ticks; a smaller stride replays more "
                                 "overlapping windows.")
    s["speed"] = c2.slider("Speed (windows per second)", 1, 200, int(s["speed"]), key="rp_speed")
    s["online"] = c3.toggle("Compare with an online-updating registry", bool(s["online"]), key="rp_online",
                            help="A copy of the registry appends each completed live block (the spec's future "
                                 "work); older entries lose weight by the forgetting factor per appended block.")
    s["forgetting"] = c3.slider("Forgetting factor per appended block", 0.90, 1.0, float(s["forgetting"]), 0.001,
                                format="%.3f", key="rp_forget", disabled=not s["online"])
    s["threshold"] = c3.slider("Re-fit threshold on confidence", 0.0, 1.0, float(s["threshold"]), 0.01,
                               key="rp_thr", help="The spec's deployment flow: re-fit when regime_confidence stays "
                                                  "below this. Default: 5th percentile of the training blocks' own "
                                                  "neighbour confidence.")
    s["patience"] = c3.number_input("Alert after this many windows below it", 1, 500, int(s["patience"]),
                                    key="rp_patience")
session.put("replay_settings", s)

# (Re)build the session when what is replayed changes; threshold / speed changes keep the progress.
sig = (session.model_id(), session.data_id(), s["source"], s["stride"], s["online"], s["forgetting"], s["break_at"],
       s["break_vol"], s["break_offset"], getattr(upload, "file_id", None))
rs: replay.ReplaySession | None = session.get("replay")
if rs is None or session.get("replay_sig") != sig:
    if rs is not None and (gone := session.stale_reason(session.get("replay_tag"), "The previous replay")):
        st.info(f"{gone} This replay starts afresh with the current model and data.", icon=":material/history:")
    try:
        rs = replay.ReplaySession(eng, build_source(s, ds, eng, upload), stride=int(s["stride"]),
                                  online=bool(s["online"]), forgetting=float(s["forgetting"]))
    except (ValueError, RuntimeError) as exc:
        st.error(str(exc))
        st.stop()
    session.put("replay", rs)
    session.put("replay_tag", session.result_tag())  # the replay's records belong to this model and data only
    session.put("replay_sig", sig)
    session.put("replay_playing", False)
    publish(rs)

def _new_chunk(fresh: bool) -> None:
    session.put("replay_chunk", int(session.get("replay_chunk", 0)) + 1)
    session.put("replay_fresh", fresh)


def _toggle_play() -> None:
    if session.get("replay_playing", False):
        # Pause. The server predicts up to two seconds ahead of the browser: the player answers with the window
        # it shows (``pause_at``) and ``live_view`` moves the session there. Under the lock: a chunk run still
        # inside ``live_view`` finishes writing its chunk state first, so it cannot overwrite this request.
        with replay_player.lock(session.get("replay")):
            session.put("replay_playing", False)
            _new_chunk(True)
        return
    else:
        # Play: route the first window now, so the player shows it at once instead of waiting for its first
        # chunk request to come back.
        r: replay.ReplaySession = session.get("replay")
        with replay_player.lock(r):
            try:
                _ = r.step(1)
            except (ValueError, RuntimeError) as exc:
                session.put("replay_error", str(exc))
                return
            publish(r)
        session.put("replay_playing", True)
    _new_chunk(True)


def _advance(n: int | None) -> None:
    """Step / +1 block / to end (n=None) / reset (n=0); callbacks run before the page, so labels are current."""
    r: replay.ReplaySession = session.get("replay")
    session.put("replay_playing", False)
    with replay_player.lock(r):
        try:
            if n == 0:
                r.reset()
            else:
                _ = r.step(r.n_windows if n is None else n)  # a bare call would be shown by Streamlit magic
        except (ValueError, RuntimeError) as exc:
            session.put("replay_error", str(exc))
        publish(r)
    _new_chunk(True)


if session.get("replay_error"):
    st.error(session.get("replay_error"))
    session.put("replay_error", None)
playing = bool(session.get("replay_playing", False))
b = st.columns([1, 1, 1, 1, 1, 3])
b[0].button("Pause" if playing else "Play", key="rp_play", type="primary", on_click=_toggle_play,
            icon=":material/pause:" if playing else ":material/play_arrow:", disabled=rs.done and not playing)
b[1].button("Step", key="rp_step", icon=":material/skip_next:", disabled=rs.done, on_click=_advance, args=(1,))
b[2].button("+1 block", key="rp_block", icon=":material/fast_forward:", disabled=rs.done, on_click=_advance,
            args=(max(1, bl // rs.stride),), help="Advance by block_len ticks")
b[3].button("To end", key="rp_end", icon=":material/last_page:", disabled=rs.done, on_click=_advance,
            args=(None,))
b[4].button("Reset", key="rp_reset", icon=":material/replay:", on_click=_advance, args=(0,))
b[5].caption(f"**{rs.source.name}** · {rs.n_windows:,} windows of {bl} ticks every {rs.stride} tick(s) · "
             f"model trained up to tick {eng.train_end_tick:,}")

aligned = int(np.max(eng.block_starts)) + bl <= ds.features.shape[0]
train_series, series_label = reference_series(ds.prices, ds.features)
train_series = train_series[: eng.train_end_tick] if aligned else None
replay_series, replay_label = reference_series(rs.source.prices, rs.source.features)


CHUNK_S = 1.0           # while playing, each chunk sent to the player holds a second of windows


@st.fragment
def live_view() -> None:
    """The player; its requests for the next chunk rerun only this fragment. A click may start a new run while
    an older one is still here (Streamlit's fast reruns): the replay's lock makes them take turns."""
    rs: replay.ReplaySession = session.get("replay")
    with replay_player.lock(rs):
        _live_view(rs)


def _live_view(rs: replay.ReplaySession) -> None:
    playing = bool(session.get("replay_playing", False))
    chunk = int(session.get("replay_chunk", 0))
    fresh = bool(session.get("replay_fresh", True))
    val = st.session_state.get("rp_player") or {}
    frames_from = rs.position
    if not fresh and val.get("fresh") == chunk:   # the player was re-created (page revisited): redraw everything
        fresh, chunk = True, chunk + 1
    elif not playing and val.get("chunk") == chunk and isinstance(val.get("pause_at"), int):
        target = min(max(val["pause_at"] + 1, 0), rs.n_windows)   # windows done when the browser paused
        if target < rs.position:
            rs.rewind(target)
        elif target > rs.position:
            _ = rs.step(target - rs.position)
        fresh, chunk = True, chunk + 1
        publish(rs)
    elif playing and not fresh and val.get("request") == chunk:
        try:
            _ = rs.step(max(1, int(np.ceil(float(s["speed"]) * CHUNK_S))))
        except (ValueError, RuntimeError) as exc:
            session.put("replay_playing", False)
            st.error(str(exc))
            return
        chunk += 1
        publish(rs)
    elif playing and val.get("finished") == chunk:
        # The end: redraw the whole page so the Play / Pause button and the static view come back.
        session.put("replay_playing", False)
        _new_chunk(True)
        publish(rs)
        st.rerun()
    session.put("replay_chunk", chunk)
    session.put("replay_fresh", False)
    # Regimes label the neighbour table, whose columns come with a fresh render: frames keep that render's
    # labelling. On a first visit they are not clustered yet (done after the player, so its charts come first).
    if fresh:
        session.put("replay_shown_regimes", (id(rs), regimes_for(eng, ds, compute=False) or {}))
    shown = session.get("replay_shown_regimes")
    regimes = shown[1] if shown and shown[0] == id(rs) else {}
    replay_player.render(
        rs, playing=playing, fresh=fresh, chunk_id=chunk, frames_from=frames_from, speed=float(s["speed"]),
        threshold=float(s["threshold"]), patience=int(s["patience"]), regimes=regimes,
        replay_series=replay_series, replay_label=replay_label, train_series=train_series,
        train_label=series_label, train_timestamps=ds.timestamps if aligned else None)
    if rs.online and rs.position:
        sm = rs.summary()
        st.caption(f"Mean confidence so far — frozen registry **{sm['mean_confidence']:.3f}**, online registry "
                   f"**{sm['online_mean_confidence']:.3f}** (forgetting {rs.forgetting:.3f} per appended block; "
                   f"{np.nanmean(rs.online_live_share[:rs.position]):.0%} of its neighbours were live entries).")
    if not playing:
        al = rs.alert(float(s["threshold"]), int(s["patience"]))
        st.caption(f"{rs.position} of {rs.n_windows} windows replayed · re-fit alert "
                   f"{'ON' if al['alert'] else 'off'} · longest run below threshold "
                   f"{int(al['streak'].max()) if rs.position else 0} window(s).")


live_view()
_ = regimes_for(eng, ds)   # after the player: the first visit draws its charts without waiting for the clustering
