"""``tracr review``: the web reviewer (``dashboards/``) over an outputs root."""

from __future__ import annotations

import argparse

from cli.commands.common import OUTPUTS_HELP, Subparsers
from tracr.outputs.layout import outputs_root

__all__ = ["add_review_parser"]


def add_review_parser(sub: Subparsers) -> None:
    review = sub.add_parser("review", help="open the web reviewer (browse, compare, blind arena, leaderboard)")
    review.add_argument("--outputs", help=OUTPUTS_HELP)
    review.add_argument("--host", default="127.0.0.1", help="address the reviewer listens on (default: 127.0.0.1)")
    review.add_argument("--port", type=int, default=8501, help="port the reviewer listens on (default: 8501)")
    review.set_defaults(handler=_review)


def _review(args: argparse.Namespace) -> int:
    from dashboards.launch import launch

    return launch(outputs_root(args.outputs), host=args.host, port=args.port)
