"""Checkpoint files: atomic writes and safe reads.

A checkpoint is a plain dict of tensors and JSON-like values (the config is inside). It is written to a
temporary file in the target folder and renamed over the target, so a crash mid-write never destroys the
previous checkpoint; it is read with ``torch.load(weights_only=True)``, which never unpickles arbitrary
objects. Knows nothing about the engine beyond the format version.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
from typing import Any, BinaryIO

import torch

from .errors import CheckpointError

FORMAT = "chronosdefrag-checkpoint"
FORMAT_VERSION = 1
TMP_PREFIX = ".chronosdefrag-"
STALE_TMP_AGE_S = 15 * 60  # a save takes seconds; a temp untouched this long belongs to a dead writer
# ".chronosdefrag-<pid>-<random>.tmp" (current) or ".chronosdefrag-<random>.tmp" (older builds, no pid).
_TMP_RE = re.compile(r"\.chronosdefrag-(?:(\d+)-)?[A-Za-z0-9_]+\.tmp")
# torch's weights_only error text suggests re-running with weights_only=False, which would execute arbitrary
# code from an untrusted file; that advice must never reach a user.
_UNSAFE_ADVICE = re.compile(r"weights_only\s*=\s*False|unpickl\w*\s+arbitrary|re-?running\s+`?torch\.load",
                            re.IGNORECASE)


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``payload`` (+ format tags) to ``path`` atomically."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    clean_stale_temps(folder)
    # The writer's PID is in the name so a later save can tell a crashed writer's leftover from a live one's.
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a checkpoint is an ordinary shareable file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else (or cannot tell): keep its file
    return True


def clean_stale_temps(folder: str, max_age_s: float = STALE_TMP_AGE_S) -> list[str]:
    """Delete temp files of interrupted saves in ``folder``; returns the removed paths.

    A ``.chronosdefrag-<pid>-*.tmp`` file is stale when its writer process no longer exists (on this host), or
    when it has not been modified for ``max_age_s`` (covers PIDs reused or files from another host). A temp of
    a live writer that is still being written is never touched. Files not matching the pattern are left alone.
    """
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        m = _TMP_RE.fullmatch(name)
        if not m:
            continue
        full = os.path.join(folder, name)
        try:
            age = now - os.stat(full).st_mtime
            pid = int(m.group(1)) if m.group(1) else None
            dead = pid is not None and pid != os.getpid() and not _pid_alive(pid)
            if dead or age > max_age_s:
                os.unlink(full)
                removed.append(full)
        except OSError:
            continue  # vanished meanwhile (its writer renamed it) or not ours to delete
    return removed


def checkpoint_bytes(payload: dict[str, Any]) -> bytes:
    """The checkpoint as bytes (for downloads)."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}, buf)
    return buf.getvalue()


def read_checkpoint(source: str | os.PathLike | bytes | BinaryIO) -> dict[str, Any]:
    """Load and check a checkpoint from a path, bytes or a binary file object."""
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<uploaded checkpoint>"
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(name):
        raise FileNotFoundError(f"checkpoint not found: {name}")
    f: Any = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        data = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ... for bad files
        raise CheckpointError(f"{name} is not a readable ChronosDefrag checkpoint "
                              f"({type(exc).__name__}: {_safe_detail(str(exc))})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{name} is not a ChronosDefrag checkpoint (no '{FORMAT}' format tag)")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{name} has checkpoint format version {version!r}; this build reads "
                              f"version {FORMAT_VERSION}")
    return data


def _safe_detail(text: str) -> str:
    """First informative line of torch's error, without its advice to disable ``weights_only``."""
    if _UNSAFE_ADVICE.search(text) or "weights_only" in text.lower() or "weights only" in text.lower():
        # Every line of torch's weights-only refusal leads to "load it unsafely": give our own reason.
        return "it holds objects other than tensors and plain values (pickled code), which are refused"
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return "no detail"
