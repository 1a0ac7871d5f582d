"""Reading tables: CSV / Parquet from a path, bytes or an uploaded file object, with precise errors.

Owns format detection (extension or magic bytes, gzip), delimiter sniffing (comma, semicolon with decimal commas,
tab, pipe), the interactive size limits (bytes and rows, with a hint to use the command line) and the error for
every unreadable input. CSVs are parsed by pyarrow's multi-threaded reader (ISO timestamps become datetime
columns there); pandas' reader is the fallback for what pyarrow cannot express (see ``_arrow_csv``), and it also
words the errors. Returns a ``pandas.DataFrame``; knows nothing about features or models (``chronoslib.data``
builds datasets from what this reads).
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections import Counter
from typing import Any

import pandas as pd

from .errors import (
    ColumnError,
    DataError,
    DelimiterError,
    EmptyFileError,
    FileTooLargeError,
    NestedColumnError,
    UnreadableFileError,
)

# Interactive limits (the app): larger inputs belong on the command line, which lifts them.
MAX_FILE_BYTES = 200 * 1024 ** 2   # same as Streamlit's default upload limit
MAX_ROWS = 2_000_000
MAX_COLUMNS = 10_000  # a header with more is refused before pandas parses it (a single gigantic line)
_CLI_HINT = "train on it from the command line instead: python -m chronoslib train FILE --out model.pt"
_DELIMS = [",", ";", "\t", "|"]
# pandas' default missing-value strings (pyarrow's list lacks "None" and "<NA>"): both readers see the same NaN.
_NA_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
              "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


def _source_bytes(source: Any) -> tuple[str, bytes | None, str | None, int]:
    """(display name, bytes or None, path or None, size in bytes) of a path / bytes / file object."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"data file not found: {path}")
        if os.path.isdir(path):
            raise UnreadableFileError(f"{path} is a folder, not a CSV or Parquet file")
        return path, None, path, os.path.getsize(path)
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>", bytes(source), None, len(source)
    if hasattr(source, "getvalue"):   # Streamlit UploadedFile, BytesIO
        raw = source.getvalue()
    elif hasattr(source, "read"):
        raw = source.read()
    else:
        raise UnreadableFileError(f"cannot read data from a {type(source).__name__}; pass a path or a file object")
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return str(getattr(source, "name", "<uploaded file>")), raw, None, len(raw)


def _memory_row_limit(n_cols: int) -> int:
    """Rows that fit in half the available memory, counting the table, the features and training copies."""
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 50_000_000
    return max(10_000, int(0.5 * avail / (16 * max(1, n_cols) + 64)))


def _sniff_delimiter(text: str) -> str | None:
    """The accepted delimiter that splits the first lines into the same number (> 1) of fields, if any."""
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    if not lines:
        return None
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(_DELIMS)).delimiter
    except csv.Error:
        pass
    for d in _DELIMS:   # fall back to the header: the delimiter that appears most in it
        counts = [ln.count(d) for ln in lines]
        if counts[0] > 0 and all(c == counts[0] for c in counts):
            return d
    best = max(_DELIMS, key=lambda d: lines[0].count(d))
    return best if lines[0].count(best) > 0 else None


def _check_single_column(df: pd.DataFrame, name: str, text_head: str) -> None:
    """A one-column CSV whose header and first row both split on spaces or ':' used another delimiter."""
    header = str(df.columns[0])
    lines = [ln for ln in text_head.splitlines() if ln.strip()]
    first = lines[1] if len(lines) > 1 else ""
    for d, label in ((" ", "spaces"), (":", "':'")):
        if len([p for p in header.split(d) if p]) > 1 and len([p for p in first.split(d) if p]) > 1:
            raise DelimiterError(
                f"{name}: only one column ({header!r}) was found; the file seems to be separated by {label}. "
                "Accepted delimiters are comma, semicolon, tab and '|' (save it as a standard CSV)")


def _has_decimal_commas(df: pd.DataFrame) -> bool:
    """True when some text column is mostly numbers written with a decimal comma (e.g. '1,5')."""
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            v = s.dropna().astype(str).str.strip().head(200)
            if len(v) and v.str.fullmatch(r"[-+]?\d+,\d+").mean() >= 0.5:
                return True
    return False


def _arrow_csv(raw: bytes | None, path: str | None, sep: str, encoding: str, decimal: str) -> pd.DataFrame | None:
    """The CSV read by pyarrow, with the columns pandas' reader would give; None where pandas must read it.

    pandas stays the reader (``_pandas_csv``) for what pyarrow cannot express or refuses: a row with more or
    fewer fields than the header (pandas drops a trailing empty field, pads short rows, and words the error for
    surplus fields), text cells starting with a space (pandas' ``skipinitialspace``; pyarrow would keep the
    space and read " 2" as text), bytes that are not text in the chosen encoding, and any other parse error
    (pandas then raises the error ``_read_csv`` reports). The result is pandas' frame except that ISO dates and
    timestamps arrive as datetime columns (UTC when they carry offsets), which ``parsing.parse_timestamps`` turns
    into the same datetime64[ns] values as from text.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            pa.BufferReader(raw) if raw is not None else path,   # a .gz path is decompressed by its extension
            read_options=pacsv.ReadOptions(encoding="utf8" if encoding == "utf-8-sig" else encoding),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),  # quoted line breaks
            convert_options=pacsv.ConvertOptions(null_values=_NA_VALUES, strings_can_be_null=True,
                                                 decimal_point=decimal))
    except (pa.ArrowException, UnicodeDecodeError, ValueError):
        return None
    cols, names = [], []
    for i, (field, col) in enumerate(zip(table.schema, table.columns)):
        kind = field.type
        if pa.types.is_null(kind):                   # an all-empty column: float NaN, as pandas reads it
            col = col.cast(pa.float64())
        elif pa.types.is_date32(kind):               # ISO dates: datetime like ISO timestamps
            col = col.cast(pa.timestamp("s"))
        elif pa.types.is_time32(kind) or pa.types.is_time64(kind):   # a time of day stays text, as in pandas
            col = col.cast(pa.string())
        elif pa.types.is_string(kind):
            if pc.any(pc.match_substring_regex(col, r"^[ \t]")).as_py():
                return None
        elif not (pa.types.is_integer(kind) and kind.bit_width == 64 and pa.types.is_signed_integer(kind)
                  or pa.types.is_float64(kind) or pa.types.is_boolean(kind) or pa.types.is_timestamp(kind)):
            return None                              # binary (not text), unsigned / huge integers: pandas' call
        cols.append(col)
        names.append(field.name if field.name.strip() else f"Unnamed: {i}")   # pandas' name for a blank header
    table = pa.table(cols, names=names)
    del cols   # with self_destruct, each column's buffers are freed once converted (peak: about one copy)
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _pandas_csv(src: Any, sep: str, encoding: str, max_rows: int | None, decimal: str) -> pd.DataFrame:
    # index_col=False: a row with more fields than the header is an error, not extra index levels (pandas
    # otherwise turns the surplus into a MultiIndex: minutes for one 2,000,000-field line, and silently
    # shifted columns for rows with a trailing delimiter the header lacks).
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return pd.read_csv(src, sep=sep, encoding=encoding, nrows=None if max_rows is None else max_rows + 1,
                           skipinitialspace=True, low_memory=False, index_col=False, decimal=decimal)


def _read_csv(name: str, raw: bytes | None, path: str | None, max_rows: int | None,
              delimiter: str | None) -> pd.DataFrame:
    if raw is not None and raw[:2] == b"\x1f\x8b":
        import gzip
        raw = gzip.decompress(raw)
    head = raw[:65536] if raw is not None else None
    if head is None:
        opener = __import__("gzip").open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(65536)
    if not head.strip():
        raise EmptyFileError(f"{name} is empty (no header, no rows)")
    encoding = "utf-8-sig"
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:   # not just a multi-byte character cut at the 64 KiB boundary
            encoding = "latin-1"
        text = head.decode(encoding, errors="ignore")
    if "\x00" in text[:4096]:
        raise UnreadableFileError(f"{name} is not a text CSV (binary content) nor a Parquet file")
    sep = delimiter or _sniff_delimiter(text) or ","
    first = text.lstrip("\r\n").split("\n", 1)[0]
    header = next(csv.reader([first], delimiter=sep), []) if len(sep) == 1 else []
    if len(header) > MAX_COLUMNS:
        raise FileTooLargeError(f"{name} has {len(header):,} columns in its header line, more than the "
                                f"{MAX_COLUMNS:,} a table can have here")
    names = [h.strip() for h in header]
    dup = sorted(c for c, n in Counter(names).items() if n > 1)
    if dup and len(first) < len(text):  # pandas would rename the second 'a' to 'a.1' silently
        raise ColumnError(f"{name}: column name(s) {dup} appear more than once in the header; rename them")
    def read(decimal: str) -> pd.DataFrame:
        df = _arrow_csv(raw, path, sep, encoding, decimal) if len(sep) == 1 else None
        if df is None:
            df = _pandas_csv(io.BytesIO(raw) if raw is not None else path, sep, encoding, max_rows, decimal)
        return df

    try:
        df = read(".")
    except pd.errors.ParserWarning as exc:
        raise UnreadableFileError(f"{name}: a data row has more fields than the header's columns (delimiter "
                                  f"{sep!r}); check for a trailing delimiter or a missing header name") from exc
    except pd.errors.EmptyDataError as exc:
        raise EmptyFileError(f"{name} is empty (no header, no rows)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise UnreadableFileError(f"{name} could not be parsed as CSV with delimiter {sep!r}: "
                                  f"{str(exc).strip().splitlines()[-1][:300]}") from exc
    if sep != "," and _has_decimal_commas(df):   # European CSV: "1,5;2,25" -> re-read with decimal=","
        df = read(",")
    if df.shape[1] == 1:
        if delimiter is None:
            _check_single_column(df, name, text)
        else:
            other = _sniff_delimiter(text)
            if other and other != delimiter:
                raise DelimiterError(f"{name}: only one column was found with delimiter {delimiter!r}; the file "
                                     f"seems to use {other!r}")
    return df


def _read_parquet(name: str, raw: bytes | None, path: str | None, max_rows: int | None) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(raw) if raw is not None else path)
        schema = pf.schema_arrow
        nested = [f"{f.name} ({f.type})" for f in schema if pa.types.is_nested(f.type)]
        if nested:
            raise NestedColumnError(f"{name}: Parquet column(s) {nested} hold nested values (struct / list / map); "
                                    "flatten them into plain numeric columns first")
        rows = pf.metadata.num_rows
        if max_rows is not None and rows > max_rows:
            raise FileTooLargeError(f"{name} has {rows:,} rows, above the limit of {max_rows:,} rows; {_CLI_HINT}")
        table = pf.read()
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UnreadableFileError(f"{name} is not a readable Parquet file: {str(exc).splitlines()[0][:300]}") \
            from exc
    df = table.to_pandas()
    if not isinstance(df.index, pd.RangeIndex):   # e.g. a DatetimeIndex saved by pandas: make it a column
        df = df.reset_index()
    return df


def read_table(source: Any, name: str | None = None, *, max_bytes: int | None = MAX_FILE_BYTES,
               max_rows: int | str | None = MAX_ROWS, delimiter: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet table from a path, bytes or an (uploaded) file object.

    The format comes from the name's extension (.csv .tsv .txt .gz / .parquet .pq) or, failing that, from the
    content (Parquet starts with ``PAR1``). CSV delimiters comma, semicolon, tab and '|' are detected. Files above
    ``max_bytes`` or with more than ``max_rows`` rows raise ``FileTooLargeError`` pointing at the command line;
    ``None`` lifts a limit, ``max_rows="memory"`` sets it from the available memory. Raises ``DataError``
    subclasses for empty, header-only, unparseable, wrongly delimited or nested files.
    """
    shown, raw, path, size = _source_bytes(source)
    name = name or shown
    if max_bytes is not None and size > max_bytes:
        raise FileTooLargeError(f"{name} is {size / 1024 ** 2:.1f} MB, above the {max_bytes / 1024 ** 2:.0f} MB "
                                f"limit for loading here; {_CLI_HINT}")
    if size == 0:
        raise EmptyFileError(f"{name} is empty (0 bytes)")
    if raw is not None:
        magic = raw[:4]
    else:
        with open(path, "rb") as f:
            magic = f.read(4)
    lower = name.lower()
    is_parquet = magic == b"PAR1" or lower.endswith((".parquet", ".pq"))
    limit = max_rows
    if max_rows == "memory":
        limit = None   # set below from the column count
    if is_parquet:
        if magic != b"PAR1":
            raise UnreadableFileError(f"{name} has a Parquet extension but is not a Parquet file (no PAR1 header)")
        df = _read_parquet(name, raw, path, limit if isinstance(limit, int) else None)
    else:
        df = _read_csv(name, raw, path, limit if isinstance(limit, int) else None, delimiter)
    df.columns = [str(c).strip() for c in df.columns]
    counts = Counter(df.columns)  # (a list.count per column was quadratic: minutes for a 2M-column line)
    dup = sorted(c for c, n in counts.items() if n > 1)
    if dup:
        raise ColumnError(f"{name}: column name(s) {dup} appear more than once; rename them")
    if max_rows == "memory":
        limit = _memory_row_limit(df.shape[1])
    if isinstance(limit, int) and len(df) > limit:
        raise FileTooLargeError(f"{name} has more than {limit:,} rows, the limit for loading here; {_CLI_HINT}"
                                if max_rows != "memory" else
                                f"{name} has {len(df):,} rows, more than fit in memory for training (about "
                                f"{limit:,}); use a shorter span of the file")
    if len(df) == 0:
        cols = ", ".join(map(str, df.columns[:8]))
        raise EmptyFileError(f"{name} has a header ({cols}) but no data rows")
    return df
