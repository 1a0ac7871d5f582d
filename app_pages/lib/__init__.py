"""Helpers shared by the app's pages, none of them a page: ``session`` (every session-state key, typed),
``cache`` (the app's caches), ``frame`` (the shared sidebar and the model gate), ``train_job`` (the session's
training job on the server's job queue), ``model_store`` (checkpoint files on the server) and ``replay_player``
(the replay's browser-side player component). Only the files listed in app.py's ``st.navigation`` are pages.
"""
