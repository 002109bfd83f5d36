"""Prefect's throwaway server (``tracr run --ephemeral``), started from the allow-listed environment.

Prefect starts it on first use with ``{**os.environ}`` as its environment, so every
key of the command would reach it. tracr starts the same server first (Prefect's
``SubprocessASGIServer`` for no port, the one its clients look for and then find
running) while the command has no other thread, with ``os.environ`` cut for that
moment to the allow list and Prefect's own settings
(:func:`tracr.serving.inherited_env.os_environ_only`). Prefect stops it when the
command exits, as before.
"""

from __future__ import annotations

import os

from tracr.serving.child_env import child_environment, host_pass_env
from tracr.serving.inherited_env import os_environ_only

__all__ = ["start_ephemeral_server"]


def start_ephemeral_server() -> None:
    """Start Prefect's temporary server now; call before any thread starts (the flow, the render pool)."""
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    with os_environ_only(child_environment(os.environ, wanted=("PREFECT_*", *host_pass_env(os.environ)))):
        server.start()
