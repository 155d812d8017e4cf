"""MNIST Lab: `streamlit run streamlit_app.py`.

The entry script is the frame around every page: page config, the navigation
over pages/, and the sidebar they share (model picker, data folder in use).
"""

import os

# Before anything imports torch: one OpenMP thread per torch call in this server. Its parallelism is its sessions
# (each rerun runs in a thread of its own), and trainers are processes that set their own count. Two threads per
# tiny call mostly spin waiting on each other, which more than doubles the server's CPU per drawn digit
# (docs/performance.md).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import streamlit as st  # noqa: E402

from mnist_core.data import dataset_present, resolve_data_dir  # noqa: E402
from ui import messages  # noqa: E402
from ui.links import adopt_model  # noqa: E402
from ui.model_picker import model_picker  # noqa: E402

st.set_page_config(page_title="MNIST Lab", page_icon=":material/draw:", layout="wide")

page = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/table_chart:"),
        st.Page("pages/explore.py", title="Explore errors", icon=":material/troubleshoot:"),
        st.Page("pages/draw.py", title="Draw", icon=":material/draw:"),
        st.Page("pages/robustness.py", title="Robustness", icon=":material/shield:"),
    ]
)

adopt_model(page)  # a shared Explore link's model, before the picker is drawn
with st.sidebar:
    model_picker()
    data_dir = resolve_data_dir().resolve()
    if dataset_present(data_dir):
        messages.caption(f":material/dataset: MNIST from `{data_dir}`")
    else:
        messages.caption(f":material/warning: No MNIST in `{data_dir}`: see Home.")

page.run()
