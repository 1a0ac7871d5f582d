"""The frame every page shares: the sidebar (active dataset, model provenance, device, training jobs) and
``model_view``, the gate of the pages that draw the model's blocks (no model, or blocks that do not fit the
dataset: a message instead of the page). Not a page (it is not listed in st.navigation).
"""

from __future__ import annotations

from typing import Any

import streamlit as st
import torch

from chronoslib import ChronosDefragEngine, regimes
from chronoslib.data import Dataset

from . import cache, session, train_job

JOBS_REFRESH_S = 1.0   # sidebar poll interval while any job is queued or running


def _training_status(current_title: str) -> None:
    """This session's job (progress and Cancel; the Train page shows its own), then every other job on the
    server with its place, each with a Cancel; reruns the whole app when this session's job ends, so every page
    sees the new model."""
    own, ref = train_job.training_job(), train_job.training_ref()
    if own is not None and ref is not None and not own.active and not ref.get("ended"):
        ref["ended"] = True
        st.rerun(scope="app")
    q = cache.job_queue()
    for job, place in train_job.queue_overview():
        mine = own is not None and job.id == own.id
        s = train_job.status(job, q.events(job.id) if mine else job.events, place)
        if mine and current_title == "Train":     # the page shows its progress and Cancel
            st.caption(f"This session's job: {s.headline}")
            continue
        if mine:
            st.progress(min(max(s.fraction, 0.0), 1.0), text=f"Training: {s.headline} — {s.detail}")
        else:
            where = "running" if place == 0 else f"{train_job.ordinal(place or 1)} in line"
            st.caption(f":material/schedule: {job.label}: {where}")
        if st.button("Cancel training" if mine else "Cancel this job", key=f"sb_cancel_{job.id}",
                     icon=":material/stop:", type="tertiary"):
            train_job.cancel(job.id)
            st.rerun(scope="app")


def sidebar(current_title: str) -> None:
    """The shared sidebar for every page; also installs a finished training run as this session's model.

    ``current_title`` is the page about to run; the Train page shows its own progress, so the sidebar does not
    repeat it there.
    """
    train_job.poll_training()
    with st.sidebar:
        ds, info, eng = session.dataset(), session.model_info(), session.engine()
        st.markdown("### :material/explore: ChronosDefrag")
        held = ds.features.shape[0] - ds.split
        st.caption(f"**Data:** {ds.name}  \n{ds.features.shape[0]:,} ticks × {ds.features.shape[1]} features · "
                   f"{held:,} held out")
        if eng is not None:
            st.caption(f"**Model:** {info.get('origin', '?')} · on *{info.get('dataset', '?')}* · "
                       f"{len(eng.block_latents):,} blocks · {session.describe_when(info.get('when'))}")
            if (why := session.model_mismatch()) is not None:
                st.warning(f"Model and data do not match: {why}. Train or load a matching model.",
                           icon=":material/warning:")
        else:
            st.caption("**Model:** none yet — train one on the Train page")
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        st.caption(f"**Device:** {'cuda · ' + gpu if gpu else 'cpu (no CUDA device)'}")
        if train_job.running() or train_job.queue_overview():
            st.markdown("**Training jobs**")
            st.fragment(_training_status, run_every=JOBS_REFRESH_S)(current_title)


def model_view(purpose: str) -> tuple[ChronosDefragEngine, Dataset, Any]:
    """(engine, dataset, ``regimes.block_view``) of the active model; otherwise a message and ``st.stop()``."""
    eng, ds = session.engine(), session.dataset()
    if eng is None or getattr(eng, "block_latents", None) is None:
        st.info(f"No model yet: train one on the Train page (or load a checkpoint) to see its {purpose}.")
        st.stop()
    try:
        view = regimes.block_view(eng.block_latents, eng.block_starts, int(eng.cfg.encoder.block_len),
                                  eng.pseudo_timeline, ds.features, ds.prices, ds.timestamps, ds.labels)
    except (ValueError, RuntimeError) as exc:
        st.error(str(exc))
        st.stop()
    return eng, ds, view
