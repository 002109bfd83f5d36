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

The same holds for multiprocessing's resource tracker, the helper process that
unlinks a pool's semaphores if the program dies: CPython starts it from the full
environment the first time a pool makes a lock (``ProcessPoolExecutor.__init__``,
before any worker). :func:`start_resource_tracker` starts it first, from the given
environment, and :class:`EnvSpawnContext` calls it before the pool exists.

POSIX only, like tracr. Use it as ``ProcessPoolExecutor(mp_context=EnvSpawnContext(env))``.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
from collections.abc import Mapping
from multiprocessing import context, popen_spawn_posix, reduction, resource_tracker, spawn, util
from typing import Any

__all__ = ["EnvSpawnContext", "start_resource_tracker"]

_TRACKERS: dict[int, subprocess.Popen[bytes]] = {}  # trackers started here, by pid: reaped by their Popen only


def start_resource_tracker(env: Mapping[str, str]) -> int | None:
    """Multiprocessing's resource tracker, started from ``env`` unless one runs already; its pid (None: a parent's).

    The command is the one ``ResourceTracker.ensure_running`` runs (CPython 3.11-3.13),
    exec'd with ``env``; the process-wide tracker object is then pointed at it, so
    every later ``ensure_running`` finds it alive and starts none from ``os.environ``.
    """
    tracker: Any = resource_tracker._resource_tracker  # CPython's private state: typeshed does not describe it
    with tracker._lock:
        if tracker._fd is not None:
            if tracker._check_alive():
                return tracker._pid
            _forget_dead_tracker(tracker)
        read_end, write_end = os.pipe()
        try:
            code = f"from multiprocessing.resource_tracker import main;main({read_end})"
            flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]  # -B, -X ...: as CPython passes
            cmd = [spawn.get_executable(), *flags, "-c", code]
            blocked = (signal.SIGINT, signal.SIGTERM)  # as CPython does: ^C reaches the tracker only through its closed pipe
            signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
            try:
                child = subprocess.Popen(cmd, pass_fds=(read_end,), env=dict(env), close_fds=True)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        _TRACKERS[child.pid] = child
        tracker._fd, tracker._pid = write_end, child.pid
        return child.pid


def _forget_dead_tracker(tracker: Any) -> None:
    """Close the pipe to a tracker that died and reap it, as ``ensure_running`` does before it starts another."""
    os.close(tracker._fd)
    pid, tracker._fd, tracker._pid = tracker._pid, None, None
    if pid is None:
        return
    ours = _TRACKERS.pop(pid, None)
    try:
        if ours is not None:
            ours.wait()
        else:
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass


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
        start_resource_tracker(self._env)  # from our environment when it is not running
        tracker_fd = resource_tracker.getfd()
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
        start_resource_tracker(self._env)  # before the pool's first lock would start it from os.environ

    def Process(self, *args: Any, **kwargs: Any) -> _EnvProcess:  # type: ignore[override]
        process = _EnvProcess(*args, **kwargs)
        process.child_env = self._env
        return process
