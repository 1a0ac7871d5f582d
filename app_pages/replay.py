"""Live replay page: the held-out span (or an upload, optionally with a simulated break) window by window.

Controls: play / pause / step / +1 block / to end / reset, speed in windows per second. The live view is a
browser-side player (``app_pages/lib/replay_player.py``): Streamlit remounts a plotly chart on every change, which
managed ~2 redraws per second here, while the player updates its charts in place at up to 25 per second. While
playing, the server predicts the next second of windows with ``predict_live`` each time the player asks.
The replay itself is a ``chronoslib.replay.ReplaySession`` kept in session state (``session.REPLAY``); its
per-window records are published under ``session.REPLAY_RECORDS`` for the manifold page.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from app_pages.lib import replay_player, session
from chronoslib import replay
from chronoslib.blocks import blocks_end
from chronoslib.features import source_columns
from chronoslib.regimes import block_regimes, reference_series

KINDS = {label: kind for kind, label in replay.SOURCES.items()}
SOURCES = tuple(KINDS)


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
    s = session.REPLAY_SETTINGS.get()
    fresh = settings_defaults(eng)
    if s is None:
        return fresh
    if s.get("model") != fresh["model"]:
        s = {**s, **{k: fresh[k] for k in MODEL_SETTINGS}}
        session.REPLAY_SETTINGS_NOTE.set(f"The re-fit threshold ({fresh['threshold']:.2f}), stride and alert "
                                            "patience were reset to the current model's defaults.")
    return s


def regimes_for(eng: Any, ds: Any, compute: bool = True) -> dict[str, np.ndarray] | None:
    """Block regimes, computed once per model and dataset (a clustering sweep takes ~1.6 s); with
    ``compute=False`` None until then."""
    key = (session.model_id(), session.data_id())
    cached = session.REPLAY_REGIMES.get()
    if cached is None or cached[0] != key:
        if not compute:
            return None
        try:
            cached = (key, block_regimes(eng.block_latents, eng.block_starts, int(eng.cfg.encoder.block_len),
                                         ds.features, ds.prices, ds.labels))
        except (ValueError, RuntimeError):
            cached = (key, {})
        session.REPLAY_REGIMES.set(cached)
    return cached[1]


def publish(rs: replay.ReplaySession) -> None:
    """All records so far, for the manifold page to place and colour."""
    session.REPLAY_RECORDS.set(rs.records())


# ---------------------------------------------------------------------- page
st.title("Live replay")
eng, ds = session.engine(), session.dataset()
if eng is None:
    st.info("No model yet: train one on the **Train** page or load a checkpoint there.")
    st.stop()

s = settings_for(eng)
if note := session.REPLAY_SETTINGS_NOTE.get():
    st.caption(note)
    session.REPLAY_SETTINGS_NOTE.set(None)
with st.expander("Replay settings", expanded=False):  # constant: a changing value re-collapses it
    c1, c2, c3 = st.columns(3)
    s["source"] = c1.radio("What to replay", SOURCES, index=SOURCES.index(s["source"]), key="rp_source")
    upload = None
    if KINDS[s["source"]] == "upload":
        upload = c1.file_uploader("Continuation (CSV / Parquet)", type=["csv", "parquet"], key="rp_upload",
                                  help=f"Columns {', '.join(source_columns(eng.cfg.data) or ds.feature_names)}; "
                                      "optional price, "
                                      "timestamp, regime.")
    elif KINDS[s["source"]] == "break":
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
                            help="A copy of the registry appends each completed live block; older entries lose "
                                 "weight by the forgetting factor per appended block.")
    s["forgetting"] = c3.slider("Forgetting factor per appended block", 0.90, 1.0, float(s["forgetting"]), 0.001,
                                format="%.3f", key="rp_forget", disabled=not s["online"])
    s["threshold"] = c3.slider("Re-fit threshold on confidence", 0.0, 1.0, float(s["threshold"]), 0.01,
                               key="rp_thr", help="Re-fit the model when regime_confidence stays below "
                                                  "this. Default: 5th percentile of the training blocks' own "
                                                  "neighbour confidence.")
    s["patience"] = c3.number_input("Alert after this many windows below it", 1, 500, int(s["patience"]),
                                    key="rp_patience")
session.REPLAY_SETTINGS.set(s)

# (Re)build the session when what is replayed changes; threshold / speed changes keep the progress.
sig = (session.model_id(), session.data_id(), s["source"], s["stride"], s["online"], s["forgetting"], s["break_at"],
       s["break_vol"], s["break_offset"], getattr(upload, "file_id", None))
rs: replay.ReplaySession | None = session.REPLAY.get()
if rs is None or session.REPLAY_SIG.get() != sig:
    if rs is not None and (gone := session.stale_reason(session.REPLAY_TAG.get(), "The previous replay")):
        st.info(f"{gone} This replay starts afresh with the current model and data.", icon=":material/history:")
    try:
        src = replay.build_source(KINDS[s["source"]], ds, eng, upload, s["break_at"], s["break_vol"],
                                  s["break_offset"])
        rs = replay.ReplaySession(eng, src, stride=int(s["stride"]),
                                  online=bool(s["online"]), forgetting=float(s["forgetting"]))
    except (ValueError, RuntimeError) as exc:
        st.error(str(exc))
        st.stop()
    session.REPLAY.set(rs)
    session.REPLAY_TAG.set(session.result_tag())  # the replay's records belong to this model and data only
    session.REPLAY_SIG.set(sig)
    session.REPLAY_PLAYING.set(False)
    publish(rs)

def _new_chunk(fresh: bool) -> None:
    session.REPLAY_CHUNK.set(int(session.REPLAY_CHUNK.get()) + 1)
    session.REPLAY_FRESH.set(fresh)


def _toggle_play() -> None:
    if session.REPLAY_PLAYING.get():
        # Pause. The server predicts up to two seconds ahead of the browser: the player answers with the window
        # it shows (``pause_at``) and ``live_view`` moves the session there. Under the lock: a chunk run still
        # inside ``live_view`` finishes writing its chunk state first, so it cannot overwrite this request.
        with replay_player.lock(session.REPLAY.get()):
            session.REPLAY_PLAYING.set(False)
            _new_chunk(True)
        return
    else:
        # Play: route the first window now, so the player shows it at once instead of waiting for its first
        # chunk request to come back.
        r: replay.ReplaySession = session.REPLAY.get()
        with replay_player.lock(r):
            try:
                _ = r.step(1)
            except (ValueError, RuntimeError) as exc:
                session.REPLAY_ERROR.set(str(exc))
                return
            publish(r)
        session.REPLAY_PLAYING.set(True)
    _new_chunk(True)


def _advance(n: int | None) -> None:
    """Step / +1 block / to end (n=None) / reset (n=0); callbacks run before the page, so labels are current."""
    r: replay.ReplaySession = session.REPLAY.get()
    session.REPLAY_PLAYING.set(False)
    with replay_player.lock(r):
        try:
            if n == 0:
                r.reset()
            else:
                _ = r.step(r.n_windows if n is None else n)  # a bare call would be shown by Streamlit magic
        except (ValueError, RuntimeError) as exc:
            session.REPLAY_ERROR.set(str(exc))
        publish(r)
    _new_chunk(True)


if session.REPLAY_ERROR.get():
    st.error(session.REPLAY_ERROR.get())
    session.REPLAY_ERROR.set(None)
playing = bool(session.REPLAY_PLAYING.get())
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

aligned = blocks_end(eng.block_starts, bl) <= ds.features.shape[0]
train_series, series_label = reference_series(ds.prices, ds.features)
train_series = train_series[: eng.train_end_tick] if aligned else None
replay_series, replay_label = reference_series(rs.source.prices, rs.source.features)


CHUNK_S = 1.0           # while playing, each chunk sent to the player holds a second of windows


@st.fragment
def live_view() -> None:
    """The player; its requests for the next chunk rerun only this fragment. A click may start a new run while
    an older one is still here (Streamlit's fast reruns): the replay's lock makes them take turns."""
    rs: replay.ReplaySession = session.REPLAY.get()
    with replay_player.lock(rs):
        _live_view(rs)


def _live_view(rs: replay.ReplaySession) -> None:
    playing = bool(session.REPLAY_PLAYING.get())
    chunk = int(session.REPLAY_CHUNK.get())
    fresh = bool(session.REPLAY_FRESH.get())
    val = session.RP_PLAYER.get() or {}
    frames_from = rs.position
    if not fresh and val.get("fresh") == chunk:   # the player was re-created (page revisited): redraw everything
        fresh, chunk = True, chunk + 1
    elif not playing and val.get("chunk") == chunk and isinstance(val.get("pause_at"), int):
        target = min(max(val["pause_at"] + 1, 0), rs.n_windows)   # windows done when the browser paused
        if target < rs.position:
            rs.rewind(target)
        elif target > rs.position:
            _ = rs.step(target - rs.position)
        publish(rs)
        # Redraw the whole page, not just this fragment: a Pause click's own page run can be overtaken by the
        # player's last fragment request, which left the button saying "Pause" while the replay was paused.
        session.REPLAY_CHUNK.set(chunk + 1)
        session.REPLAY_FRESH.set(True)
        st.rerun()
    elif playing and not fresh and val.get("request") == chunk:
        try:
            _ = rs.step(max(1, int(np.ceil(float(s["speed"]) * CHUNK_S))))
        except (ValueError, RuntimeError) as exc:
            session.REPLAY_PLAYING.set(False)
            st.error(str(exc))
            return
        chunk += 1
        publish(rs)
    elif playing and val.get("finished") == chunk:
        # The end: redraw the whole page so the Play / Pause button and the static view come back.
        session.REPLAY_PLAYING.set(False)
        _new_chunk(True)
        publish(rs)
        st.rerun()
    session.REPLAY_CHUNK.set(chunk)
    session.REPLAY_FRESH.set(False)
    # Regimes label the neighbour table, whose columns come with a fresh render: frames keep that render's
    # labelling. On a first visit they are not clustered yet (done after the player, so its charts come first).
    if fresh:
        session.REPLAY_SHOWN_REGIMES.set((id(rs), regimes_for(eng, ds, compute=False) or {}))
    shown = session.REPLAY_SHOWN_REGIMES.get()
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
