"""ChronosDefrag app frame: page config, navigation, session defaults and the shared sidebar.

Start with:  streamlit run app.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")      # before numpy / torch: 2-core machines stall otherwise
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import streamlit as st  # noqa: E402

st.set_page_config(page_title="ChronosDefrag", page_icon="🧭", layout="wide")

# Navigation comes before the heavy imports: on a fresh server Streamlit's legacy app_pages/ router runs this file
# first and shows every file in app_pages/ as a page until st.navigation replaces that list, so call it at once.


def _overview() -> None:
    # A function page: Streamlit's first run on a fresh server lists app.py plus every app_pages/*.py file (its legacy
    # pages-folder mode) before st.navigation takes over; one function page keeps both lists the same length.
    from app_pages.lib import overview

    overview.render()


pages = [
    st.Page(_overview, title="Overview", icon=":material/explore:", url_path="overview", default=True),
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

import torch  # noqa: E402

from app_pages.lib import session  # noqa: E402

torch.set_num_threads(1)
session.init_defaults()
session.frame(current.title)  # sidebar; also installs a training run that finished since the last rerun
st.session_state[session.K_ROUTER] = True
current.run()
