"""ChronosDefrag app frame: page config, session defaults, shared sidebar and navigation.

Start with:  streamlit run app.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")      # before numpy / torch: 2-core machines stall otherwise
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import streamlit as st  # noqa: E402
import torch  # noqa: E402

from pages import session  # noqa: E402

torch.set_num_threads(1)
st.set_page_config(page_title="ChronosDefrag", page_icon="🧭", layout="wide")
session.init_defaults()


def _training_status() -> None:
    """Sidebar line for a run in flight; reruns the whole app when it ends so every page sees the new model."""
    job = session.training_job()
    if job is None or job.installed:
        return
    if job.done:
        st.rerun()
    st.progress(job.fraction(), text=f"Training: {job.status_line()}")


pages = [
    st.Page("pages/data.py", title="Data", icon=":material/table_chart:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/manifold.py", title="Manifold", icon=":material/scatter_plot:"),
    st.Page("pages/timeline.py", title="Timeline", icon=":material/view_timeline:"),
    st.Page("pages/replay.py", title="Live replay", icon=":material/play_circle:"),
    st.Page("pages/latency.py", title="Latency", icon=":material/speed:"),
    st.Page("pages/diagnostics.py", title="Diagnostics", icon=":material/monitor_heart:"),
    st.Page("pages/evidence.py", title="Evidence", icon=":material/science:"),
]
current = st.navigation(pages)
session.poll_training()  # a run that finished since the last rerun becomes this session's model

with st.sidebar:
    ds, info, eng = session.dataset(), session.model_info(), session.engine()
    st.markdown("### 🧭 ChronosDefrag")
    held = ds.features.shape[0] - ds.split
    st.caption(f"**Data:** {ds.name}  \n{ds.features.shape[0]:,} ticks × {ds.features.shape[1]} features · "
               f"{held:,} held out")
    if eng is not None:
        st.caption(f"**Model:** {info.get('origin', '?')} · on *{info.get('dataset', '?')}* · "
                   f"{len(eng.block_latents):,} blocks · {session.describe_when(info.get('when'))}")
        if (why := session.model_mismatch()) is not None:
            st.warning(f"Model and data do not match: {why}.", icon=":material/warning:")
    else:
        st.caption("**Model:** none yet — train one on the Train page")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    st.caption(f"**Device:** {'cuda · ' + gpu if gpu else 'cpu (no CUDA device)'}")
    job = session.training_job()
    if job is not None and job.running and current.title != "Train":  # the Train page shows its own progress
        st.fragment(_training_status, run_every=1.0)()

st.session_state[session.K_ROUTER] = True
current.run()
