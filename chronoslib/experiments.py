"""Evidence experiments (``python -m chronoslib evaluate``): placeholder until the evidence issue lands."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="does defragmented training help? prints JSON")
    p.add_argument("data")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps({"status": "not implemented yet"}))
    return 0
