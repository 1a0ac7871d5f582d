"""Train page (placeholder until its issue lands)."""

import streamlit as st

from pages import session

session.guard()
st.title("Train")
st.info("This page is being built.")
