"""The entry point (cli/main.py): every command group registered, and the commands that read the tree stay Prefect-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]
COMMANDS = [
    "run",
    "cancel",
    "export",
    "list",
    "show",
    "doctor",
    "storage",
    "index",
    "serve-ocr",
    "gpus",
    "submit",
    "review",
    "server",
    "score",
    "judge",
    "import",
    "models",
    "reparse",
]


def test_every_command_is_registered_in_help_order() -> None:
    help_text = build_parser().format_help()
    positions = [help_text.index(f"\n    {name}") for name in COMMANDS]
    assert positions == sorted(positions), help_text


def test_help_list_and_show_import_no_prefect(tmp_path: Path) -> None:
    code = (
        "import contextlib, io, sys\n"
        "from cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    codes = [main(['list', '--outputs', {str(tmp_path)!r}]), main(['show', 'nope', '--outputs', {str(tmp_path)!r}])]\n"
        "    try:\n"
        "        main(['run', '--help'])\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        "print(codes, sorted(m for m in sys.modules if m.split('.')[0] in {'prefect', 'flows', 'tasks'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 0] []"
