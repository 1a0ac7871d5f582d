"""Figure builder of the Train page (loss curves), checked on its data without a browser."""

import pytest

from chronoslib.plots.training import loss_figure


def _history(n_enc: int = 4, n_pred: int = 3, collapsed_at: tuple[int, ...] = ()) -> list[dict]:
    enc = [{"stage": "encoder", "epoch": i + 1, "loss": 3.0 - 0.3 * i, "infonce": 2.0 - 0.2 * i, "ter": 0.1 * i,
            "lcr": 0.5 / (i + 1), "entropy": 1.0 + 0.01 * i, "entropy_target": 1.04,
            "collapsed": (i + 1) in collapsed_at} for i in range(n_enc)]
    pred = [{"stage": "predictor", "epoch": i + 1, "loss": 0.5 / (i + 1)} for i in range(n_pred)]
    return enc + pred


def _trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_loss_figure_draws_every_logged_term_against_its_epoch():
    h = _history()
    fig = loss_figure(h)
    enc = [r for r in h if r["stage"] == "encoder"]
    for key, name in (("loss", "total"), ("infonce", "InfoNCE"), ("ter", "TER"), ("lcr", "LCR"),
                      ("entropy", "entropy"), ("entropy_target", "target")):
        t = _trace(fig, name)
        assert list(t.x) == [1, 2, 3, 4]
        assert list(t.y) == pytest.approx([r[key] for r in enc])
    pred = _trace(fig, "predictor MSE")
    assert list(pred.x) == [1, 2, 3] and list(pred.y) == pytest.approx([0.5, 0.25, 0.5 / 3])
    # InfoNCE / TER / LCR share the first panel, entropy vs target the second, predictor the third.
    assert _trace(fig, "InfoNCE").xaxis == "x" and _trace(fig, "target").xaxis == "x2" and pred.xaxis == "x3"


def test_loss_figure_marks_collapsed_epochs_and_fixes_the_planned_x_range():
    fig = loss_figure(_history(collapsed_at=(2, 4)), encoder_epochs=10, predictor_epochs=5)
    bad = _trace(fig, "collapsed")
    assert list(bad.x) == [2, 4] and list(bad.y) == pytest.approx([2.7, 2.1])
    assert tuple(fig.layout.xaxis.range) == (0.5, 10.5) and tuple(fig.layout.xaxis3.range) == (0.5, 5.5)
    assert fig.layout.xaxis.dtick == 2 and fig.layout.xaxis3.dtick == 1  # whole epochs, about 8 ticks
    assert "collapsed" not in [t.name for t in loss_figure(_history()).data]


def test_loss_figure_of_an_empty_history_says_so_instead_of_failing():
    fig = loss_figure([])
    assert any("no epochs yet" in a.text for a in fig.layout.annotations)
    assert all(len(t.x) == 0 for t in fig.data)
