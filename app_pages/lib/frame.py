"""The frame every page shares: the sidebar (active dataset, model provenance, device, training progress) and
``model_view``, the gate of the pages that draw the model's blocks (no model, or blocks that do not fit the
dataset: a message instead of the page). Not a page (it is not listed in st.navigation).
"""

from __future__ import annotations

from typing import Any

import streamlit as st
import torch

from chronoslib import ChronosDefragEngine, regimes
from chronoslib.data import Dataset

from . import session, train_job


def _training_status() -> None:
    """Sidebar progress of a run in flight; reruns the whole app when it ends so every page sees the model."""
    job = train_job.training_job()
    if job is None or job.installed:
        return
    if job.done:
        st.rerun()
    st.progress(job.fraction(), text=f"Training: {job.status_line()}")


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
        job = train_job.training_job()
        if job is not None and job.running and current_title != "Train":
            st.fragment(_training_status, run_every=1.0)()


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
