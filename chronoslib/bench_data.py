"""Data-loading benchmark: ``read_table`` with pyarrow's CSV reader against pandas' reader, and ``build_dataset``
on what each gives, on a generated minute-bar CSV (1,000,000 rows x 6 features by default, about 70 MB).

Every measurement runs in a fresh child process (``python -c``), so its peak RSS is its own and no stage warms
another's caches; the readers alternate run by run (pandas, pyarrow, pandas, ...) so a change of machine load
touches both, and medians are reported. ``build_dataset`` is timed from the pyarrow frame (datetime timestamps,
what ``read_table`` returns) and from the pandas frame (timestamps as text). Knows nothing about models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

_CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
from chronoslib import readers
from chronoslib.data import build_dataset
if {reader!r} == "pandas":
    readers._arrow_csv = lambda *a, **k: None   # read_table's pandas path, as for files pyarrow cannot read
t = time.perf_counter()
df = readers.read_table({path!r}, max_bytes=None)
read_s = time.perf_counter() - t
out = {{"read_s": read_s, "rows": len(df)}}
if {build!r}:
    t = time.perf_counter()
    ds = build_dataset(df, "bench")
    out["build_s"] = time.perf_counter() - t
    out["features"] = list(ds.features.shape)
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def write_bars(path: str, n: int, seed: int = 0) -> None:
    """A CSV of ``n`` minute bars: an ISO timestamp and six 5-decimal feature columns (random walks)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.standard_normal((n, 6)).cumsum(0) * 0.01, columns=[f"f{i}" for i in range(6)])
    df.insert(0, "timestamp", pd.date_range("2020-01-01", periods=n, freq="min"))
    df.to_csv(path, index=False, float_format="%.5f")


def _child(path: str, reader: str, build: bool) -> dict[str, Any]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CHILD.format(root=root, path=path, reader=reader, build=build)],
                         capture_output=True, text=True, env=env, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - t   # with interpreter start and imports
    return res


def _summary(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    vals = [r[key] for r in runs]
    return {"median_s": float(np.median(vals)), "runs_s": [round(v, 3) for v in vals],
            "peak_rss_mb": float(max(r["peak_rss_mb"] for r in runs))}


def bench_data(quick: bool = False, rows: int | None = None, runs: int | None = None) -> dict[str, Any]:
    """read_table (pandas vs pyarrow) and build_dataset at ``rows`` rows (100k quick, 1M otherwise)."""
    n = rows or (100_000 if quick else 1_000_000)
    runs = runs or (2 if quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bars.csv")
        write_bars(path, n)
        size_mb = os.path.getsize(path) / 2**20
        load = [os.getloadavg()[0]]
        by = {"pandas": [], "pyarrow": []}
        for _ in range(runs):                     # alternating, so both readers see the same load drift
            for reader in by:
                by[reader].append(_child(path, reader, build=True))
        load.append(os.getloadavg()[0])
    return {
        "rows": n, "columns": 7, "file_mb": round(size_mb, 1), "runs": runs, "load_avg_1min": load,
        "read_table": {r: _summary(v, "read_s") for r, v in by.items()},
        "build_dataset": {f"from_{r}_frame": _summary(v, "build_s") for r, v in by.items()},
        "read_and_build_median_s": {r: float(np.median([x["read_s"] + x["build_s"] for x in v]))
                                    for r, v in by.items()},
        "pyarrow_speedup_read": float(np.median([x["read_s"] for x in by["pandas"]])
                                      / np.median([x["read_s"] for x in by["pyarrow"]])),
        "note": "peak_rss_mb: the whole child process (imports, read, build); read/build times exclude start-up",
    }
