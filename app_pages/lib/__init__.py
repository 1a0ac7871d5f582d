"""Helpers shared by the app's pages (session state, the replay player component).

They live in a subfolder because Streamlit lists every ``app_pages/*.py`` file as a page on the first run of a fresh
server (its legacy pages-folder mode) and ignores files in subfolders.
"""
