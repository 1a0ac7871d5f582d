"""The data-loading benchmark section: both readers measured in their own processes on a generated file, the
same rows read by each, build_dataset timed on each frame."""

import json
import os
import subprocess
import sys

from chronoslib.bench_data import bench_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_data_measures_both_readers_and_build_dataset():
    r = bench_data(rows=3000, runs=1)
    assert r["rows"] == 3000 and r["runs"] == 1 and r["file_mb"] > 0
    for reader in ("pandas", "pyarrow"):
        row = r["read_table"][reader]
        assert len(row["runs_s"]) == 1 and row["median_s"] > 0 and row["peak_rss_mb"] > 50
        assert r["build_dataset"][f"from_{reader}_frame"]["median_s"] > 0
    assert r["pyarrow_speedup_read"] > 0   # a ratio is reported, never asserted (noisy machines)


def test_bench_only_data_prints_one_json_document():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    code = "import sys; from chronoslib import bench_data, cli; " \
           "bench_data.bench_data.__defaults__ = (False, 2000, 1); sys.exit(cli.main(['bench', '--only', 'data']))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert set(res) == {"meta", "data"} and res["data"]["rows"] == 2000
