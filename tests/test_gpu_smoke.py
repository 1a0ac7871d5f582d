"""The GPU smoke command runs in its skip mode where there is no CUDA device: exit 0, every step "skipped"
with the reason, one JSON document (also written with --out)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_smoke_skips_every_step_without_cuda(tmp_path):
    out = tmp_path / "smoke.json"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "chronoslib.gpu_smoke", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert res == json.loads(out.read_text())
    assert res["cuda_available"] is False
    for step in ("train", "predict", "faiss_gpu", "nccl"):
        assert res[step] == {"status": "skipped", "reason": "no CUDA device"}, step
