"""read_table's pyarrow CSV path against its pandas path: the same frame (ISO timestamps aside, which pyarrow
parses into datetime columns holding the same instants), the same Dataset and the same errors."""

import gzip

import numpy as np
import pandas as pd
import pytest

from chronoslib import readers
from chronoslib.data import build_dataset
from chronoslib.errors import DataError
from chronoslib.parsing import parse_timestamps


def _ts(n: int, fmt: str = "%Y-%m-%d %H:%M:%S") -> list[str]:
    return list(pd.date_range("2024-01-02 09:30", periods=n, freq="min").strftime(fmt))


def _rows(header: str, rows: list[str]) -> bytes:
    return (header + "\n" + "\n".join(rows) + "\n").encode()


_T = _ts(6)
# name -> (file bytes, whether pyarrow reads it (False: pandas must, see readers._arrow_csv))
CORPUS = {
    "integer and float columns": (_rows("timestamp,a,b", [f"{t},{i},{i * 0.5 + 0.125}" for i, t in enumerate(_T)]),
                                  True),
    "missing cells": (_rows("timestamp,a,b", [f"{t},{'' if i == 2 else i},{'NA' if i == 4 else i / 3}"
                                              for i, t in enumerate(_T)]), True),
    "pandas-only missing words": (_rows("timestamp,a,b", [f"{t},{'None' if i == 1 else i},{'<NA>' if i == 3 else i}"
                                                          for i, t in enumerate(_T)]), True),
    "non-numeric cells": (_rows("timestamp,a,b", [f"{t},{'oops' if i == 3 else i},{i}" for i, t in enumerate(_T)]),
                          True),
    "quoted fields": (_rows("timestamp,a,name", [f'{t},{i},"x, ""{i}"""' for i, t in enumerate(_T)]), True),
    "quoted line break": (_rows("timestamp,a,note", [f'{t},{i},"line\nbreak"' for i, t in enumerate(_T)]), True),
    "semicolons and decimal commas": (_rows("timestamp;a;b", [f"{t};{i},5;{i}" for i, t in enumerate(_T)]), True),
    "tabs": (_rows("timestamp\ta\tb", [f"{t}\t{i}.5\t{i}" for i, t in enumerate(_T)]), True),
    "pipes": (_rows("timestamp|a|b", [f"{t}|{i}.5|{i}" for i, t in enumerate(_T)]), True),
    "UTF-8 BOM": (b"\xef\xbb\xbf" + _rows("timestamp,a", [f"{t},{i}" for i, t in enumerate(_T)]), True),
    "latin-1 text": (_rows("timestamp,a,city", [f"{t},{i},Z\xfcrich" for i, t in enumerate(_T)])
                     .decode("utf-8").encode("latin-1"), True),
    "time zone offsets": (_rows("timestamp,a", [f"{t}+02:00" for t in _ts(6, "%Y-%m-%dT%H:%M:%S")]
                                ).replace(b"+02:00", b"+02:00,1"), True),
    "UTC and offsets mixed": (_rows("timestamp,a", [f"{t}{'Z' if i % 2 else '-05:00'},{i}"
                                                    for i, t in enumerate(_ts(6, "%Y-%m-%dT%H:%M:%S"))]), True),
    "mixed date formats": (_rows("date,a", [f"{'2024-01-0' if i % 2 else '2024/01/0'}{i + 1},{i}"
                                            for i in range(6)]), True),
    "dates only": (_rows("date,a", [f"2024-01-0{i + 1},{i}" for i in range(6)]), True),
    "time of day": (_rows("clock,a", [f"09:3{i}:00,{i}" for i in range(6)]), True),
    "booleans": (_rows("timestamp,a,flag", [f"{t},{i},{'True' if i % 2 else 'False'}" for i, t in enumerate(_T)]),
                 True),
    "labels": (_rows("timestamp,a,regime", [f"{t},{i},{'bull' if i < 3 else 'bear'}" for i, t in enumerate(_T)]),
               True),
    "blank header name": (_rows("timestamp,a,", [f"{t},{i}," for i, t in enumerate(_T)]), True),
    "spaces after the delimiter": (_rows("timestamp, a, b", [f"{t}, {i}, x{i}" for i, t in enumerate(_T)]), False),
    "trailing delimiter on rows only": (_rows("timestamp,a", [f"{t},{i}," for i, t in enumerate(_T)]), False),
    "short row": (_rows("timestamp,a,b", [f"{t},{i}" if i == 2 else f"{t},{i},{i}" for i, t in enumerate(_T)]),
                  False),
}


def _both(raw: bytes, name: str, monkeypatch) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(read_table as shipped, read_table with the pandas reader only)."""
    arrow = readers.read_table(raw, name)
    with monkeypatch.context() as m:
        m.setattr(readers, "_arrow_csv", lambda *a, **k: None)
        pandas = readers.read_table(raw, name)
    return arrow, pandas


@pytest.mark.parametrize("case", list(CORPUS))
def test_pyarrow_reads_the_same_table_as_pandas(case, monkeypatch):
    raw, by_arrow = CORPUS[case]
    sep = readers._sniff_delimiter(raw.decode("latin-1"))
    enc = "latin-1" if case == "latin-1 text" else "utf-8-sig"
    assert (readers._arrow_csv(raw, None, sep, enc, ".") is not None) == by_arrow   # the path under test
    arrow, pandas = _both(raw, f"{case}.csv", monkeypatch)
    assert list(arrow.columns) == list(pandas.columns) and len(arrow) == len(pandas)
    for c in pandas.columns:
        if pd.api.types.is_datetime64_any_dtype(arrow[c]) and not pd.api.types.is_datetime64_any_dtype(pandas[c]):
            np.testing.assert_array_equal(parse_timestamps(arrow[c], c), parse_timestamps(pandas[c], c))
        else:
            pd.testing.assert_series_equal(arrow[c], pandas[c], check_dtype=True)


@pytest.mark.parametrize("case", [c for c in CORPUS if c not in ("latin-1 text", "time of day", "booleans",
                                                                 "mixed date formats", "dates only")])
def test_pyarrow_and_pandas_tables_build_the_same_dataset(case, monkeypatch):
    raw = CORPUS[case][0]
    out = []
    for table in _both(raw, f"{case}.csv", monkeypatch):
        try:
            ds = build_dataset(table, case, holdout=0.2, nan_policy="ffill")
            out.append((ds.features, ds.timestamps, ds.labels, ds.feature_names, ds.notes))
        except DataError as exc:
            out.append((type(exc), str(exc)))
    a, p = out
    assert len(a) == len(p)
    for x, y in zip(a, p):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


def test_a_generated_minute_bar_file_builds_the_same_dataset_on_both_paths(monkeypatch):
    rng = np.random.default_rng(3)
    n = 5000
    df = pd.DataFrame(rng.standard_normal((n, 3)).round(5), columns=["f0", "f1", "f2"])
    df.insert(0, "timestamp", pd.date_range("2020-01-01", periods=n, freq="min"))
    df["volume"] = rng.integers(1, 10_000, n)
    raw = df.to_csv(index=False).encode()
    arrow, pandas = _both(raw, "bars.csv", monkeypatch)
    assert pd.api.types.is_datetime64_any_dtype(arrow["timestamp"])    # parsed by pyarrow, not left as text
    a, p = (build_dataset(t, "bars") for t in (arrow, pandas))
    np.testing.assert_array_equal(a.features, p.features)
    np.testing.assert_array_equal(a.timestamps, p.timestamps)
    np.testing.assert_array_equal(a.timestamps, df["timestamp"].to_numpy(dtype="datetime64[ns]"))
    assert a.feature_names == p.feature_names and a.notes == p.notes


BAD = {
    "more fields than the header": b"a,b\n1,2,3,4\n5,6\n",
    "unparseable timestamp": _rows("timestamp,a", [f"{'soon' if i == 3 else t},{i}" for i, t in enumerate(_ts(20))]),
    "naive next to an offset": _rows("timestamp,a", [f"{t}{'+02:00' if i == 4 else ''},{i}"
                                                     for i, t in enumerate(_T)]),
    "word in a number column": _rows("timestamp,a", [f"{t},{'eleven' if i == 5 else i}" for i, t in enumerate(_T)]),
    "NaN cell": _rows("timestamp,a", [f"{t},{'nan' if i == 1 else i}" for i, t in enumerate(_T)]),
    "unsorted": _rows("timestamp,a", [f"{t},{i}" for i, t in enumerate(reversed(_T))]),
    "header only": b"timestamp,a,b\n",
    "not UTF-8 after the first 64 KiB": b"a,b\n" + b"1,2\n" * 20_000 + b"3,\xff\xfe\n",
    "gzip of a one-column file with spaces": gzip.compress(b"a b c\n1 2 3\n4 5 6\n"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gets_the_same_error_on_both_paths(case, monkeypatch):
    out = []
    for patch in (False, True):
        with monkeypatch.context() as m:
            if patch:
                m.setattr(readers, "_arrow_csv", lambda *a, **k: None)
            try:
                build_dataset(readers.read_table(BAD[case], f"{case}.csv"), case, holdout=0.2)
                out.append(None)
            except DataError as exc:
                out.append((type(exc).__name__, str(exc)))
    assert out[0] is not None and out[0] == out[1], out


def _reference(text: bytes, feats: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(features (T, F) float32, timestamps (T,) datetime64[ns]) computed the plain pandas way."""
    import io

    df = pd.read_csv(io.BytesIO(text))
    return (df[feats].to_numpy(dtype=np.float64).astype(np.float32),
            pd.to_datetime(df["timestamp"]).to_numpy(dtype="datetime64[ns]"))


def test_the_sample_and_a_generated_file_build_the_dataset_pandas_computes():
    from chronoslib.data import SAMPLE_DIR, SAMPLE_RECIPES, load_sample
    from chronoslib.data import SAMPLES as NAMES

    first = list(NAMES)[0]
    with open(f"{SAMPLE_DIR}/{NAMES[first]}", "rb") as f:
        raw = f.read()
    ds = load_sample(first)
    x, ts = _reference(raw, SAMPLE_RECIPES[NAMES[first]]["feature_cols"])
    np.testing.assert_array_equal(ds.features, x)
    np.testing.assert_array_equal(ds.timestamps, ts)
    np.testing.assert_array_equal(ds.labels, pd.read_csv(f"{SAMPLE_DIR}/{NAMES[first]}")["regime"].to_numpy())

    rng = np.random.default_rng(11)
    n = 20_000
    gen = pd.DataFrame(rng.standard_normal((n, 6)).round(5), columns=[f"f{i}" for i in range(6)])
    gen.insert(0, "timestamp", pd.date_range("2020-01-01", periods=n, freq="min"))
    raw = gen.to_csv(index=False).encode()
    ds = build_dataset(readers.read_table(raw, "gen.csv"), "gen")
    x, ts = _reference(raw, [f"f{i}" for i in range(6)])
    np.testing.assert_array_equal(ds.features, x)
    np.testing.assert_array_equal(ds.timestamps, ts)
    assert ds.feature_names == [f"f{i}" for i in range(6)] and ds.split == 16_000 and ds.notes == []
