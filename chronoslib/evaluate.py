"""The ``evaluate`` command: load a dataset, run the evidence protocol, print the result as strict JSON.

Owns ``load_eval_dataset`` (a shipped sample by name or a CSV / Parquet file, with the price column kept out of
the features), the argument parser and ``run``, which adds the verdict sentences (``verdicts``) to the protocol's
numbers (``experiments.run_evaluation``) and writes the JSON atomically when ``--out`` is given. Knows nothing
about Streamlit or plotting.
"""

from __future__ import annotations

import argparse
import json
import os

from .config import DefragConfig
from .errors import DataError
from .experiments import QUICK, run_evaluation
from .timeline import METHODS
from .verdicts import verdicts


# ---------------------------------------------------------------------------- loading
def load_eval_dataset(source: str, holdout: float = 0.2, features: list[str] | None = None, label_col: str = "",
                      price_col: str = "", timestamp_col: str = "", transforms: list[str] | None = None,
                      nan_policy: str = "refuse", sort: bool = False):
    """A ``data.Dataset`` for ``evaluate``: a shipped sample by display name, or a CSV / Parquet path.

    Files go through the data layer (``read_table`` + ``build_dataset``). Column roles: timestamp and label are
    detected by name unless given; the price column (detected by name: close / price / ...) feeds the alpha test
    and is kept out of the raw features. With neither ``features`` nor ``transforms`` the features are
    ``advice.default_recipe``'s (market data: stationary engineered features, never a price level; otherwise
    the other numeric columns); given ``transforms`` alone, the engineered ones only.
    """
    from . import advice, columns, data, readers

    if source in data.SAMPLES:
        return data.load_sample(source, holdout=holdout)
    if not os.path.isfile(source):
        raise DataError(f"{source}: no such file, and not a sample dataset name (samples: {list(data.SAMPLES)})")
    if not 0 < holdout < 1:
        raise DataError(f"holdout must be a fraction in (0, 1) for the evaluation, got {holdout}")
    df = readers.read_table(source, max_bytes=None, max_rows="memory")
    cols = [str(c) for c in df.columns]
    if price_col and price_col not in cols:
        raise DataError(f"{source}: price column {price_col!r} not found; available columns: {cols}")
    price = price_col or columns.detect_price_columns(df).get("price")
    feats = list(features or [])
    if not feats and not transforms:
        rec = advice.default_recipe(df)
        ts, lab = timestamp_col or rec.timestamp_col, label_col or rec.label_col
        feats, transforms = [c for c in rec.feature_cols if c not in (ts, lab, price)], rec.transforms
        if not feats and not transforms:
            raise DataError(f"{source}: no numeric feature column besides the timestamp, label and price "
                            f"({price!r}); columns: {cols}. Name features with --features or use --transforms")
    return data.build_dataset(df, os.path.basename(source), timestamp_col=timestamp_col or None,
                              feature_cols=feats or None, label_col=label_col or None, price_col=price,
                              transforms=list(transforms or []), nan_policy=nan_policy, holdout=holdout, sort=sort)


# ---------------------------------------------------------------------------- command line
def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="does defragmented training help? prints JSON")
    p.add_argument("data", help="CSV / Parquet file (or the name of a shipped sample dataset)")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (intervals need >= 2)")
    p.add_argument("--seed0", type=int, default=0, help="first seed")
    p.add_argument("--quick", action="store_true", help=f"small fast setting: {QUICK}")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of the end held out (files only)")
    p.add_argument("--features", default="", help="comma-separated feature columns (default: stationary features "
                                                 "for market data, else the numeric columns other than timestamp, "
                                                 "label and price)")
    p.add_argument("--label", default="", help="ground-truth regime column (default: 'regime' / 'label' if present)")
    p.add_argument("--price", default="", help="price column for the alpha test (default: 'price' / 'close')")
    p.add_argument("--timestamp", default="", help="timestamp column (default: detected)")
    p.add_argument("--transforms", default="", help="comma-separated feature engineering from prices: "
                   "log_return, abs_return, hl_range, log_volume, rel_volume, rolling_vol (default: see --features)")
    p.add_argument("--nan-policy", choices=("refuse", "ffill"), default="refuse")
    p.add_argument("--sort", action="store_true", help="sort rows by timestamp instead of refusing disorder")
    p.add_argument("--block-len", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="encoder epochs")
    p.add_argument("--predictor-epochs", type=int, default=None)
    p.add_argument("--ordering", choices=METHODS, default=None,
                   help="pseudo-timeline method of the pseudo arm (default: the config's routing.chain_method)")
    p.add_argument("--config", default="", help="JSON file with a DefragConfig dict to start from")
    p.add_argument("--out", default="", help="also write the JSON result to this file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    base = DefragConfig.from_json_file(args.config) if args.config else DefragConfig()
    ds = load_eval_dataset(args.data, holdout=args.holdout,
                           features=[c.strip() for c in args.features.split(",") if c.strip()],
                           label_col=args.label, price_col=args.price, timestamp_col=args.timestamp,
                           transforms=[c.strip() for c in args.transforms.split(",") if c.strip()],
                           nan_policy=args.nan_policy, sort=args.sort)
    cfg = base.with_overrides(block_len=args.block_len, input_dim=int(ds.features.shape[1]))
    seeds, enc_ep, pred_ep = args.seeds, args.epochs, args.predictor_epochs
    if args.quick:
        seeds = min(seeds, QUICK["seeds"])
        enc_ep = QUICK["encoder_epochs"] if enc_ep is None else enc_ep
        pred_ep = QUICK["predictor_epochs"] if pred_ep is None else pred_ep
    res = run_evaluation(ds.features, ds.split, cfg, labels=ds.labels, prices=ds.prices, seeds=seeds,
                         seed0=args.seed0, encoder_epochs=enc_ep, predictor_epochs=pred_ep, dataset=ds.name,
                         ordering=args.ordering)
    res["verdicts"] = verdicts(res)
    text = json.dumps(res, indent=1, allow_nan=False)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.out)
    print(text)
    return 0
