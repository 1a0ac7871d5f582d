"""The scale-out command end to end: ``python -m torch.distributed.run --standalone --nproc-per-node=2 -m chronoslib
train SAMPLE`` (two gloo ranks on CPU, a short run) writes a checkpoint whose provenance names both ranks, and the
app loads it from the server's model folder through the Train page and renders its pages with it."""

import os
import subprocess
import sys

os.environ.setdefault("CHRONOS_FAST_UI", "1")

from streamlit.testing.v1 import AppTest  # noqa: E402

from app_pages.lib import model_store, session  # noqa: E402
from chronoslib import ChronosDefragEngine  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "app.py")
SAMPLE = os.path.join(ROOT, "sample_data", "synthetic_regimes.csv")


def test_a_two_rank_torchrun_checkpoint_loads_in_the_app(tmp_path, monkeypatch):
    out = tmp_path / "ranks.pt"
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "chronoslib",
           "train", SAMPLE, "--out", str(out), "--epochs", "2", "--predictor-epochs", "1"]
    res = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "x 2 ranks (gloo)" in res.stdout + res.stderr            # both ranks trained the one model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranks.pt"]   # rank 0 alone wrote, atomically

    direct = ChronosDefragEngine.load(str(out))
    assert (direct.meta["world_size"], direct.meta["backend"]) == (2, "gloo")
    assert [h["epoch"] for h in direct.history if h["stage"] == "encoder"] == [1, 2]

    monkeypatch.setattr(model_store, "MODEL_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/train.py").run()
    assert at.selectbox(key="tr_saved_choice").options == ["(none)", "ranks.pt"]
    at.selectbox(key="tr_saved_choice").set_value("ranks.pt").run()
    at.button(key="tr_load").click().run()
    assert not at.exception and not at.error
    eng = at.session_state[session.ENGINE.key]
    assert eng.meta == direct.meta and eng.fit_summary == direct.fit_summary   # the loaded file is the active model
    for page in ("app_pages/overview.py", "app_pages/timeline.py", "app_pages/manifold.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert at.session_state[session.ENGINE.key] is eng, page
