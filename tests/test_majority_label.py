"""Block majority labels with missing codes (-1) and ties, against a brute-force reference."""
import numpy as np

from chronoslib.experiments import block_majority


def _brute(labels, bl):
    out = []
    for i in range(len(labels) // bl):
        r = [int(x) for x in labels[i * bl:(i + 1) * bl] if x >= 0]
        if not r:
            out.append(-1)
            continue
        best = max(set(r), key=lambda v: (r.count(v), -v))
        out.append(best)
    return out


def test_block_majority_ignores_missing_and_breaks_ties_low_and_matches_brute_force():
    assert block_majority(np.array([-1, -1, -1, -1, 2, 2, 3, 3]), 4).tolist() == [-1, 2]
    rng = np.random.default_rng(0)
    for _ in range(200):
        lab = rng.integers(-1, 4, size=int(rng.integers(4, 40)))
        assert block_majority(lab, 4).tolist() == _brute(lab, 4)


def test_replay_block_regimes_keep_truth_when_labels_have_missing_values(small_engine):
    from types import SimpleNamespace

    from chronoslib.replay import block_regimes

    eng, x = small_engine
    lab = np.repeat(np.arange(40) % 3, 16).astype(np.float64)
    lab[:16] = -1                    # a wholly unlabelled first block
    lab[20] = np.nan                 # a blank inside the second block
    ds = SimpleNamespace(features=x, prices=100 + np.cumsum(x[:, 0]), labels=lab)
    out = block_regimes(eng, ds, k=3)
    assert "cluster" in out and out["truth"][0] == -1
    assert out["truth"][1:].tolist() == (np.arange(1, 40) % 3).tolist()


def test_one_majority_rule_serves_synthetic_sets_regime_views_and_blocks_at_given_starts():
    from chronoslib.labels import block_majority as one
    from chronoslib.synthetic import block_labels

    lab = np.array([2, 2, 0, -1, 1, 1, 1, 1, -1, -1, -1, -1], dtype=float)
    lab_nan = lab.copy()
    lab_nan[3] = np.nan
    maj, share = one(lab_nan, 4, return_share=True)
    assert maj.tolist() == [2, 1, -1] and share.tolist() == [0.5, 1.0, 0.0]   # NaN and -1 are both missing
    assert [a.tolist() for a in block_labels(lab.astype(int), 4)] == [maj.tolist(), share.tolist()]
    assert one(lab, 4, starts=np.array([2, 4])).tolist() == [1, 1]            # ticks 2..5 and 4..7
