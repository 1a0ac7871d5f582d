"""ChronosDefrag app frame: page config, navigation, session defaults and the shared sidebar.

Start with:  streamlit run app.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")      # before numpy / torch: 2-core machines stall otherwise
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import streamlit as st  # noqa: E402

st.set_page_config(page_title="ChronosDefrag", page_icon="🧭", layout="wide")

import torch  # noqa: E402

from app_pages.lib import frame, session  # noqa: E402

torch.set_num_threads(1)
pages = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/explore:", default=True),
    st.Page("app_pages/data.py", title="Data", icon=":material/table_chart:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/manifold.py", title="Manifold", icon=":material/scatter_plot:"),
    st.Page("app_pages/timeline.py", title="Timeline", icon=":material/view_timeline:"),
    st.Page("app_pages/replay.py", title="Live replay", icon=":material/play_circle:"),
    st.Page("app_pages/latency.py", title="Latency", icon=":material/speed:"),
    st.Page("app_pages/diagnostics.py", title="Diagnostics", icon=":material/monitor_heart:"),
    st.Page("app_pages/evidence.py", title="Evidence", icon=":material/science:"),
]
current = st.navigation(pages)
session.init_defaults()
frame.sidebar(current.title)  # also installs a training run that finished since the last rerun
current.run()
