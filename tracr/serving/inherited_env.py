"""What a child inherits when whoever starts it passes no environment: the allow list, not our keys.

tracr starts its own children from :func:`tracr.serving.child_env.child_environment`.
Libraries start helpers too, without an environment of their own: ``platform.platform()``
runs ``uname -p`` (the openai SDK asks it once per process, for its request headers),
``multiprocessing`` its resource tracker, ``os.system`` a shell. Such a child gets
the process's C-level environment (``environ``), which starts as everything the
user exported, keys included.

Python's ``os.environ`` is a copy of that block made at start-up, and reading it
never looks at ``environ`` again. So :func:`confine_inherited_environment` unsets
in ``environ`` every variable the allow list would not give a child, and leaves
``os.environ`` whole: the runs still read their keys there, every child inherits
only the allow list. :func:`set_for_this_process` does the same for a variable set
later (a key written in a config, moved to ``TRACR_API_KEY_<MODEL>``).

A library that builds a child's environment from ``os.environ`` itself (Prefect's
ephemeral server; ``subprocess`` when ``close_fds=False`` picks ``posix_spawn``) is
not helped by that; :func:`os_environ_only` is for starting such a child while the
process has no other thread: ``os.environ`` holds only the given variables meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from tracr.serving.child_env import child_environment, host_pass_env

__all__ = ["confine_inherited_environment", "os_environ_only", "set_for_this_process"]

_hidden: set[str] = set()  # names in os.environ that are kept out of the C-level environment


def confine_inherited_environment() -> list[str]:
    """Unset in the C-level environment every variable a child may not get; returns their names.

    Call it first thing in a process's entry point, before any thread starts:
    ``unsetenv`` is not safe while another thread reads the environment.
    """
    allowed = child_environment(os.environ, wanted=host_pass_env(os.environ))
    hidden = sorted(name for name in os.environ if name not in allowed)
    for name in hidden:
        os.unsetenv(name)
    _hidden.update(hidden)
    return hidden


def set_for_this_process(name: str, value: str) -> None:
    """``os.environ[name] = value`` for this process's readers, kept out of the environment children inherit."""
    os.environ[name] = value
    os.unsetenv(name)
    _hidden.add(name)


@contextmanager
def os_environ_only(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` is ``env`` inside the block, then all it was, with hidden names hidden again.

    Only while no other thread runs: the process's own readers (its runs' keys) would
    miss their variables meanwhile.
    """
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        for name in _hidden & saved.keys():
            os.unsetenv(name)
