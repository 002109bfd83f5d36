"""What several command groups share: the subparsers type they register with and the ``--outputs`` help."""

from __future__ import annotations

import argparse
from typing import TypeAlias

__all__ = ["Subparsers", "OUTPUTS_HELP"]

#: What ``ArgumentParser.add_subparsers`` returns: each ``add_<command>_parser`` adds its command to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

OUTPUTS_HELP = "outputs root (default: $TRACR_OUTPUTS, else ./outputs)"
