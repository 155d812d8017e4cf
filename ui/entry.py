"""Every page runs inside the entry script (streamlit_app.py), even when a visitor's first URL is a page's own.

Streamlit keeps its first multipage mode for apps with a `pages/` folder beside the entry script: until some
session has called `st.navigation`, a URL such as /draw runs pages/draw.py on its own. On a fresh server whose
first visitor follows a link to a page, that visitor and every later one (until someone opens /) would get the
page without the entry script: no page config, no shared sidebar, and torch imported before the server's
OpenMP setting. Each page calls `run_inside_entry_script()` before importing anything that imports torch.
"""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def run_inside_entry_script() -> None:
    """If this page runs on its own, switch Streamlit to `st.navigation` mode and rerun through the entry script."""
    if PagesManager.uses_pages_directory:
        # What st.navigation does on its first call. The rerun keeps the URL, so the entry script runs this page.
        PagesManager.uses_pages_directory = False
        st.rerun()
