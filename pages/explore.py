"""Explore page: where the model is wrong, and why."""

import streamlit as st

st.title("Explore errors")
