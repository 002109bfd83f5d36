"""A multiprocessing ``spawn`` context whose children start from a given environment.

``multiprocessing`` spawns children with the parent's environment, and offers no
per-context way to change it. Two alternatives were rejected: clearing
``os.environ`` in a pool initializer leaves the secrets in the child's
``/proc/<pid>/environ`` (the block the process started with), and filtering the
parent's ``os.environ`` while a pool spawns races with the run's own threads,
which read their keys from it. So the child is started with the environment
given here, by the same command line ``spawn`` uses, through
:class:`subprocess.Popen` (``pass_fds`` is what ``spawnv_passfds`` does).

Children do not import the parent's ``__main__`` as ``spawn`` does by default: they
run functions from importable modules, and for ``tracr`` the main module is the
whole CLI (about 0.25 s of CPU per worker, taken from the run on a small machine).

POSIX only, like tracr. Use it as ``ProcessPoolExecutor(mp_context=EnvSpawnContext(env))``.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Mapping
from multiprocessing import context, popen_spawn_posix, reduction, spawn, util
from typing import Any

__all__ = ["EnvSpawnContext"]


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


class _EnvPopen(popen_spawn_posix.Popen):
    """``popen_spawn_posix.Popen`` with ``env=`` on the exec; the child is reaped through its ``subprocess.Popen``."""

    _fds: list[int]  # set by popen_spawn_posix.Popen.__init__: the fds the child inherits

    def __init__(self, process_obj: Any, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._child: subprocess.Popen[bytes] | None = None
        super().__init__(process_obj)

    def _launch(self, process_obj: Any) -> None:
        # CPython's popen_spawn_posix.Popen._launch (3.11-3.13), exec'd with self._env.
        from multiprocessing import resource_tracker

        tracker_fd = resource_tracker.getfd()  # starts the tracker when it is not running
        if tracker_fd is None:
            raise RuntimeError("multiprocessing's resource tracker did not start")
        self._fds.append(tracker_fd)
        prep_data = spawn.get_preparation_data(process_obj._name)
        for main_module in ("init_main_from_name", "init_main_from_path"):
            prep_data.pop(main_module, None)
        fp = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, fp)
            reduction.dump(process_obj, fp)
        finally:
            context.set_spawning_popen(None)
        parent_r = child_w = child_r = parent_w = None
        try:
            parent_r, child_w = os.pipe()
            child_r, parent_w = os.pipe()
            cmd = spawn.get_command_line(tracker_fd=tracker_fd, pipe_handle=child_r)
            self._fds.extend([child_r, child_w])
            self._child = subprocess.Popen(cmd, executable=spawn.get_executable(), pass_fds=self._fds, env=self._env, close_fds=True)
            self.pid = self._child.pid
            self.sentinel = parent_r
            with open(parent_w, "wb", closefd=False) as f:
                f.write(fp.getbuffer())
        finally:
            self.finalizer = util.Finalize(self, _close_all, ([fd for fd in (parent_r, parent_w) if fd is not None],))
            for fd in (child_r, child_w):
                if fd is not None:
                    os.close(fd)

    def poll(self, flag: int = os.WNOHANG) -> int | None:
        # One owner reaps the child: its subprocess.Popen (a second waitpid would race it).
        if self.returncode is None and self._child is not None:
            self.returncode = self._child.poll() if flag == os.WNOHANG else self._child.wait()
        return self.returncode


class _EnvProcess(context.SpawnProcess):
    child_env: dict[str, str] = {}

    @staticmethod
    def _Popen(process_obj: Any) -> _EnvPopen:
        return _EnvPopen(process_obj, process_obj.child_env)


class EnvSpawnContext(context.SpawnContext):
    """The ``spawn`` start method, with every child started from ``env`` instead of ``os.environ``."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)

    def Process(self, *args: Any, **kwargs: Any) -> _EnvProcess:  # type: ignore[override]
        process = _EnvProcess(*args, **kwargs)
        process.child_env = self._env
        return process
