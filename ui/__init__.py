"""Small Streamlit helpers shared by the pages. The only Streamlit code outside pages/ and streamlit_app.py."""
