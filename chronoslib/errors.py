"""Exception types of chronoslib.

Every error a user can trigger with bad input is a ``ValueError`` subclass (bad data, bad config, bad
checkpoint, look-ahead) or a ``RuntimeError`` subclass (calling things in the wrong order), so callers can
catch broadly and the app can show the message instead of a traceback. Messages name the problem: the field,
column, row or shape, with what was expected and what was got.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent with another one."""


class DataError(ValueError):
    """Input data has the wrong shape, type or values."""


class NotEnoughBlocksError(DataError):
    """Fewer than 4 complete blocks can be cut from the data."""


class EmptyFileError(DataError):
    """The file has no bytes, no header or no data rows."""


class FileTooLargeError(DataError):
    """The file (bytes or rows) is above the interactive limit or what fits in memory."""


class UnreadableFileError(DataError):
    """The file is not a CSV / Parquet that can be parsed."""


class DelimiterError(UnreadableFileError):
    """The CSV seems to use a delimiter other than the accepted ones."""


class NestedColumnError(UnreadableFileError):
    """A Parquet column holds nested values (struct / list / map)."""


class ColumnError(DataError):
    """A named column is missing or chosen for two roles."""


class NoFeaturesError(DataError):
    """No numeric column is left to use as a feature."""


class BadValuesError(DataError):
    """NaN / inf / non-numeric cells (or values the transforms cannot take) in the used columns."""


class TimestampError(DataError):
    """Timestamps are unparseable, missing, duplicated or not increasing."""


class LookAheadError(ValueError):
    """A live query claims a timestamp inside the span the model was trained on."""


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, of an unknown format, or incompatible with the engine's config."""


class RegistryEmptyError(RuntimeError):
    """The registry holds no latents yet (``fit`` or ``load`` must come first)."""


class NotFittedError(RuntimeError):
    """A method that needs a trained model was called before ``fit`` / ``load``."""
