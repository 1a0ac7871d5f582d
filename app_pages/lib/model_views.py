"""Where the Manifold, Timeline and Overview pages get a model's views (``chronoslib.views``): ``resolve`` says
whether they are stored (``cache.stored_views``, or the file this session's finished training job wrote), whether
the model is small enough to compute them here as the pages always did (``INLINE_MAX`` blocks: the shipped
sample), or else which queued ``python -m chronoslib views`` job computes them; ``pending_note`` shows that job's
state and reruns the page when it ends. Heavy work never runs in the server: a large model's clustering,
orderings and UMAP come from the job; the pages show PCA and what needs no clustering meanwhile.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from chronoslib import jobs
from chronoslib.views import ModelViews

from . import cache, train_job

INLINE_MAX = 4_000      # blocks up to which clustering, orderings and UMAP run in the server (seconds at most)
REFRESH_S = 2.0         # how often a page waiting for a views job looks at it


@dataclass
class ViewsState:
    """What a page may draw of the active model: ``views`` (stored), ``inline`` (small: compute here) or
    neither (a views job is on its way: ``job``, ``message``)."""

    views: ModelViews | None
    inline: bool
    job: jobs.Job | None = None
    message: str = ""

    @property
    def ready(self) -> bool:
        return self.views is not None or self.inline


def resolve(n_blocks: int, key: str, model_bytes: Callable[[], bytes]) -> ViewsState:
    """The views state of the model whose latents have ``latents_key`` ``key``; for a large model without
    views, queues the views job (once per key on this server) with the checkpoint ``model_bytes()`` returns."""
    v = cache.stored_views(key) or _from_training_job(key)
    if v is not None:
        return ViewsState(v, False)
    if n_blocks <= INLINE_MAX:
        return ViewsState(None, True)
    q = cache.job_queue()
    job_id = cache.views_job(key) or cache.claim_views_job(key, lambda: _submit(n_blocks, model_bytes()).id)
    job = q.get(job_id)
    if job is not None and job.state == "done":
        v = cache.attach_views_file(job.views, key)
        if v is not None:
            return ViewsState(v, False, job)
    return ViewsState(None, False, job, _message(job, n_blocks, q.position(job_id) if job else None))


def retry(key: str) -> None:
    """Forget ``key``'s failed or cancelled views job, so the next ``resolve`` queues a new one."""
    cache.set_views_job(key, None)


def _from_training_job(key: str) -> ModelViews | None:
    job = train_job.training_job()
    if job is not None and job.state == "done":
        return cache.attach_views_file(job.views, key)
    return None


def views_argv(python: str = sys.executable) -> list[str]:
    """The views command run on a checkpoint placed in the job's folder."""
    d = jobs.JOB_DIR_TOKEN
    return [python, "-m", "chronoslib", "views", os.path.join(d, jobs.MODEL), "--out", os.path.join(d, jobs.VIEWS),
            "--events", os.path.join(d, jobs.EVENTS), "--quiet"]


def _submit(n_blocks: int, model: bytes) -> jobs.Job:
    tag = train_job.session_tag()
    return cache.job_queue().submit(views_argv(), owner=tag, label=f"views of {n_blocks:,} blocks · session {tag}",
                                    files={jobs.MODEL: model})


def _message(job: jobs.Job | None, n: int, place: int | None) -> str:
    what = f"This model has {n:,} blocks: its UMAP, regime clusters and orderings are computed in a background job"
    if job is None:
        return f"{what}, which could not be found on this server."
    if job.state == "queued":
        return f"{what}, waiting for a free job slot ({train_job.ordinal(place or 1)} in line)."
    if job.state == "running":
        last = job.last_event() or {}
        return f"{what}: {last.get('message') or 'starting'}."
    if job.state == "done":
        return f"{what}; it finished but its views file could not be read ({job.views})."
    return f"{what}; it {'was cancelled' if job.state == 'cancelled' else 'failed: ' + job.message}."


def pending_note(state: ViewsState, key: str, meanwhile: str) -> None:
    """The note a page shows while its views are being computed (``meanwhile``: what it shows instead), with a
    retry button after a failure, and a fragment that reruns the page once the job has ended."""
    st.info(f"{state.message} {meanwhile}", icon=":material/hourglass_top:")
    job = state.job
    if job is None or not job.active:
        if st.button("Compute the views again", key="views_retry", icon=":material/refresh:"):
            retry(key)
            st.rerun()
        return

    @st.fragment(run_every=REFRESH_S)
    def _wait() -> None:
        now = cache.job_queue().get(job.id)
        if now is None or not now.active:
            st.rerun(scope="app")

    _wait()
