"""ChronosDefrag: contrastive regime manifolds, defragmented pseudo-timelines and live kNN routing.

Public API (see README): ``DefragConfig``, ``ChronosDefragEngine``, ``LivePrediction``,
``build_pseudo_timeline`` and the error types. The library never imports Streamlit.

The names that need torch (the engine, the registry, the orderings) load on first use, so ``python -m
chronoslib train`` can write its first progress event before torch has loaded (seconds on a busy machine).
"""

import importlib
from typing import TYPE_CHECKING, Any

from .config import DataConfig, DefragConfig, EncoderConfig, OptimConfig, PredictorConfig, RoutingConfig
from .errors import (
    BadValuesError,
    CheckpointError,
    ColumnError,
    ConfigError,
    DataError,
    DelimiterError,
    EmptyFileError,
    FileTooLargeError,
    LookAheadError,
    NestedColumnError,
    NoFeaturesError,
    NotEnoughBlocksError,
    NotFittedError,
    RegistryEmptyError,
    TimestampError,
    UnreadableFileError,
)

if TYPE_CHECKING:
    from .engine import ChronosDefragEngine, LivePrediction
    from .registry import Registry
    from .timeline import build_pseudo_timeline, greedy_chain_exact, path_cost

_LAZY = {"ChronosDefragEngine": "engine", "LivePrediction": "engine", "Registry": "registry",
         "build_pseudo_timeline": "timeline", "greedy_chain_exact": "timeline", "path_cost": "timeline"}


def __getattr__(name: str) -> Any:
    """A public name that needs torch, imported on first use (PEP 562); ``chronoslib.x`` of a submodule too."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ChronosDefragEngine", "LivePrediction", "DefragConfig", "EncoderConfig", "RoutingConfig",
    "PredictorConfig", "OptimConfig", "DataConfig", "build_pseudo_timeline", "greedy_chain_exact",
    "path_cost", "Registry", "CheckpointError", "ConfigError", "DataError", "LookAheadError",
    "NotEnoughBlocksError", "NotFittedError", "RegistryEmptyError", "BadValuesError", "ColumnError",
    "DelimiterError", "EmptyFileError", "FileTooLargeError", "NestedColumnError", "NoFeaturesError",
    "TimestampError", "UnreadableFileError",
]
__version__ = "0.1.0"
