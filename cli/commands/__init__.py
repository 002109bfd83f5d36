"""The ``tracr`` commands, one module per group; ``cli.main`` registers their parsers and dispatches.

Each module exposes one ``add_<command>_parser(subparsers)`` per command (its help
text, arguments and handler) and imports Prefect and other heavy modules only
inside the handlers that need them, so ``tracr --help``, ``list`` and ``show``
start at once.
"""
