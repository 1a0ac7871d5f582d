"""The one majority-label rule (chronoslib.labels.block_majority): missing labels (NaN, blanks read as NaN,
negative codes), ties, blocks at given starts, against a brute-force reference; and every user of a per-block
label (evaluation, synthetic sets, regime views, the replay's neighbour table) agrees with it."""
import math

import numpy as np
import pytest

from chronoslib.errors import ConfigError, DataError
from chronoslib.labels import block_majority


def _brute_rows(rows, bl):
    maj, share = [], []
    for r in rows:
        r = [int(x) for x in r if not (isinstance(x, float) and math.isnan(x)) and x >= 0]
        if not r:
            maj.append(-1)
            share.append(0.0)
            continue
        best = max(set(r), key=lambda v: (r.count(v), -v))   # most ticks, then the lowest code
        maj.append(best)
        share.append(r.count(best) / bl)
    return maj, share


def _brute(labels, bl):
    return _brute_rows([list(labels[i * bl:(i + 1) * bl]) for i in range(len(labels) // bl)], bl)[0]


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


def test_nan_blanks_and_negative_codes_are_missing_and_shares_match_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(200):
        bl = int(rng.integers(1, 9))
        lab = rng.integers(-3, 5, size=int(rng.integers(0, 60))).astype(np.float64)
        lab[rng.random(lab.size) < 0.2] = np.nan                   # blank cells read as NaN
        starts = np.sort(rng.choice(max(lab.size - bl + 1, 1), size=min(5, max(lab.size - bl + 1, 0)),
                                    replace=False)) if lab.size >= bl else np.zeros(0, dtype=np.int64)
        maj, share = block_majority(lab, bl, return_share=True)
        ref_maj, ref_share = _brute_rows([list(lab[i * bl:(i + 1) * bl]) for i in range(lab.size // bl)], bl)
        assert maj.tolist() == ref_maj and share.tolist() == pytest.approx(ref_share)
        m2, s2 = block_majority(lab, bl, starts=starts, return_share=True)
        r2, rs2 = _brute_rows([list(lab[s:s + bl]) for s in starts], bl)
        assert m2.tolist() == r2 and s2.tolist() == pytest.approx(rs2)


def test_ties_go_to_the_lowest_code_and_huge_codes_cost_no_memory():
    assert block_majority(np.array([3, 3, 1, 1, 2, 2]), 6).tolist() == [1]
    assert block_majority(np.array([7, -1, 7, 0, -1, 0]), 6).tolist() == [0]
    # A code of 10**12 must not make a 10**12-wide count table (the old rule allocated max(code) + 1 columns).
    big = np.array([10 ** 12, 10 ** 12, 5, -1], dtype=np.int64)
    assert block_majority(big, 4).tolist() == [10 ** 12]


def test_bad_label_input_is_a_clear_error():
    with pytest.raises(ConfigError, match="block_len"):
        block_majority(np.zeros(8, dtype=int), 0)
    with pytest.raises(DataError, match="whole regime codes; tick 1"):
        block_majority(np.array([0.0, 1.5, 2.0, 2.0]), 2)
    with pytest.raises(DataError, match="dtype"):
        block_majority(np.array(["a", "b"]), 1)
    with pytest.raises(DataError, match="1-D"):
        block_majority(np.zeros((4, 2)), 2)
    with pytest.raises(DataError, match="block 1 .*outside"):
        block_majority(np.zeros(8, dtype=int), 4, starts=np.array([0, 6]))


def test_the_evaluation_uses_the_same_rule():
    from chronoslib import experiments

    assert experiments.block_majority is block_majority


def test_a_label_column_with_blanks_and_negative_codes_loads_them_as_missing():
    import pandas as pd

    from chronoslib.data import build_dataset

    x = np.random.default_rng(0).standard_normal((40, 2))
    for col in ([0, 1, -1, None, 2] * 8, [0, 1, -1, 3, 2] * 8, ["a", "b", " ", None, "a"] * 8):
        df = pd.DataFrame({"f1": x[:, 0], "f2": x[:, 1], "regime": col})
        ds = build_dataset(df, "t", holdout=0.0)
        want = [-1 if v is None or v == -1 or v == " " else v for v in col[:5]]
        names = ds.label_names or []
        got = [names[c] if names and c >= 0 else int(c) for c in ds.labels[:5]]
        assert got == want                             # -1 and blanks are missing, not a regime "-1.0" or " "
        assert "-1.0" not in names and " " not in names and "" not in names
        assert block_majority(ds.labels, 5).tolist() == [block_majority(ds.labels[:5], 5)[0]] * 8
