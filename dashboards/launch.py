"""``tracr review``: refresh the index, then run the Streamlit app on the outputs root.

The app file is found through the installed ``dashboards`` package, so the
command works from any directory; the outputs root reaches the app as
``-- --outputs DIR`` and ``$TRACR_OUTPUTS``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["app_path", "review_command", "launch"]


def app_path() -> Path:
    import dashboards

    return Path(dashboards.__file__).resolve().parent / "app.py"


def review_command(outputs: Path, *, host: str = "127.0.0.1", port: int = 8501) -> list[str]:
    """The ``streamlit run`` command line for the reviewer."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--",
        "--outputs",
        str(outputs),
    ]


def launch(outputs: Path, *, host: str = "127.0.0.1", port: int = 8501) -> int:
    """Refresh the index (so new runs show), then replace this process with Streamlit."""
    from tracr.index.store import refresh_index

    if not outputs.is_dir():
        print(f"no outputs folder at {outputs} (run a job first, or pass --outputs)", file=sys.stderr)
        return 2
    stats = refresh_index(outputs)
    print(f"index: {stats.pages} pages ({stats.runs_read} runs read, {stats.runs_unchanged} unchanged) in {stats.seconds:.2f} s")
    print(f"tracr review on http://{host}:{port} (outputs: {outputs})", flush=True)
    env = {**os.environ, "TRACR_OUTPUTS": str(outputs), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    command = review_command(outputs, host=host, port=port)
    os.execve(command[0], command, env)
    return 0  # not reached
