"""Draw page: draw or upload a digit and see what the model thinks, and why."""

import streamlit as st

st.title("Draw a digit")
