"""Checkpoint files: atomic writes and safe reads.

A checkpoint is a plain dict of tensors and JSON-like values (the config is inside). It is written to a
temporary file in the target folder and renamed over the target, so a crash mid-write never destroys the
previous checkpoint; it is read with ``torch.load(weights_only=True)``, which never unpickles arbitrary
objects. Knows nothing about the engine beyond the format version.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Any, BinaryIO

import torch

from .errors import CheckpointError

FORMAT = "chronosdefrag-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``payload`` (+ format tags) to ``path`` atomically."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    fd, tmp = tempfile.mkstemp(prefix=".chronosdefrag-", suffix=".tmp", dir=folder)
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
        raise CheckpointError(f"{name} is not a readable ChronosDefrag checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{name} is not a ChronosDefrag checkpoint (no '{FORMAT}' format tag)")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{name} has checkpoint format version {version!r}; this build reads "
                              f"version {FORMAT_VERSION}")
    return data
