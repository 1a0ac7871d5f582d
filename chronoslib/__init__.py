"""ChronosDefrag: contrastive regime manifolds, defragmented pseudo-timelines and live kNN routing.

Public API (see README): ``DefragConfig``, ``ChronosDefragEngine``, ``LivePrediction``,
``build_pseudo_timeline`` and the error types. The library never imports Streamlit.
"""

from .config import DataConfig, DefragConfig, EncoderConfig, OptimConfig, PredictorConfig, RoutingConfig
from .engine import ChronosDefragEngine, LivePrediction
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
from .registry import Registry
from .timeline import build_pseudo_timeline, greedy_chain_exact, path_cost

__all__ = [
    "ChronosDefragEngine", "LivePrediction", "DefragConfig", "EncoderConfig", "RoutingConfig",
    "PredictorConfig", "OptimConfig", "DataConfig", "build_pseudo_timeline", "greedy_chain_exact",
    "path_cost", "Registry", "CheckpointError", "ConfigError", "DataError", "LookAheadError",
    "NotEnoughBlocksError", "NotFittedError", "RegistryEmptyError", "BadValuesError", "ColumnError",
    "DelimiterError", "EmptyFileError", "FileTooLargeError", "NestedColumnError", "NoFeaturesError",
    "TimestampError", "UnreadableFileError",
]
__version__ = "0.1.0"
