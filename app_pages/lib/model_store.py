"""Model files on the server: where "Save model" writes (``MODEL_DIR``, git-ignored; CHRONOS_MODEL_DIR moves it,
tests point it at a temporary folder), plain file names for saving, and the saved checkpoints to pick from.
"""

from __future__ import annotations

import os
import re

from .session import ROOT

MODEL_DIR = os.environ.get("CHRONOS_MODEL_DIR", os.path.join(ROOT, "checkpoints"))


def safe_filename(name: str, suffix: str = ".pt") -> str:
    """A plain file name (letters, digits, '-', '_', '.') for saving on the server: no folders, no dot-files."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(name.strip())).strip("._") or "model"
    return stem if stem.endswith(suffix) else stem + suffix


def saved_models() -> list[str]:
    """Regular checkpoint files in ``MODEL_DIR``, newest first (folders, symlinks and dot-files are skipped: a
    dangling or looping link must not break the picker)."""
    try:
        entries = list(os.scandir(MODEL_DIR))
    except OSError:
        return []
    files = []
    for e in entries:
        try:
            if e.name.endswith(".pt") and not e.name.startswith(".") and e.is_file(follow_symlinks=False):
                files.append((e.stat(follow_symlinks=False).st_mtime, e.name))
        except OSError:     # removed meanwhile
            continue
    return [name for _, name in sorted(files, reverse=True)]
