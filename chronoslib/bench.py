"""Benchmarks (``python -m chronoslib bench``): placeholder until the performance issue lands."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run the benchmarks and print JSON")
    p.add_argument("--quick", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps({"status": "not implemented yet"}))
    return 0
