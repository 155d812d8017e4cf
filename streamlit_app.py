"""MNIST Lab: `streamlit run streamlit_app.py`.

The entry script is the frame around every page: page config, the navigation
over pages/, and the sidebar they share (model picker, data folder in use).
"""

import streamlit as st

from mnist_core.data import dataset_present, resolve_data_dir
from mnist_core.limits import public_message
from ui.models import model_picker

st.set_page_config(page_title="MNIST Lab", page_icon=":material/draw:", layout="wide")

page = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/table_chart:"),
        st.Page("pages/explore.py", title="Explore errors", icon=":material/troubleshoot:"),
        st.Page("pages/draw.py", title="Draw", icon=":material/draw:"),
    ]
)

with st.sidebar:
    model_picker()
    data_dir = resolve_data_dir().resolve()
    if dataset_present(data_dir):
        st.caption(public_message(f":material/dataset: MNIST from `{data_dir}`"))  # no server paths when hosted
    else:
        st.caption(public_message(f":material/warning: No MNIST in `{data_dir}`: see Home."))

page.run()
