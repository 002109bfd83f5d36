"""The local model servers of one job: shared per serve settings, reference counted, owned by the job.

The job flow makes one :class:`LocalServers`, announces its runs (so a shared
server also waits for runs that have not started yet), binds it while its runs
go, and closes it at the end. How one server is brought up and stopped (the
``local-model-server`` flow) is handed in, so this unit holds no flow and no
state outside the object.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from tasks.serving.process import ServerStartError, log_tail
from tasks.serving.runtimes import serve_key
from tracr.config.job import ModelSpec
from tracr.config.models import LocalServerModel
from tracr.errors import ErrorClass
from tracr.outputs.layout import RunLocation
from tracr.run.plan import RunPlan
from tracr.run.recorder import RunRecorder
from tracr.run.state import RunStatus
from tracr.serving.server_errors import ServerDeath, ServerDied, classify_server_log, never_dies

__all__ = [
    "LocalServers",
    "ServerSession",
    "LocalEndpoint",
]

#: The providers whose runs need a local server from the ``local-model-server`` flow.


def _logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    """The flow run's logger, or the module's outside one."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalEndpoint:
    """What a run needs from a local server: where it is and the model name it serves."""

    base_url: str
    served_model: str
    gpu_ids: tuple[int, ...] | None = None
    shared: bool = False
    log_path: str | None = None
    death: ServerDeath = field(default=never_dies, compare=False, repr=False)


@dataclass(eq=False)
class ServerSession:
    """One server shared by the runs of a job that need it (the server flow fills in ``ready``)."""

    model: LocalServerModel
    location: RunLocation
    recorders: list[RunRecorder] = field(default_factory=list)
    ready: asyncio.Future[LocalEndpoint] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    release: asyncio.Event = field(default_factory=asyncio.Event)
    users: int = 0
    task: asyncio.Task[Any] | None = None
    #: The status the sharing runs are in while the server comes up (a run joining later catches up).
    status: RunStatus = RunStatus.QUEUED
    #: The server process's exit code, or ``None`` while it runs (a container is not polled).
    exit_code: Callable[[], int | None] = lambda: None
    log_path: Path | None = None
    died: ServerDied | None = None

    def death(self) -> ServerDied | None:
        """Whether the server exited while serving: the error the runs end with, recorded once."""
        if self.died is not None:
            return self.died
        code = self.exit_code()
        if code is None:
            return None
        message = f"local server for {self.model.model} exited with code {code} while serving"
        diagnosis = classify_server_log(log_tail(self.log_path, 200) if self.log_path else "", fallback=ErrorClass.DIED_WHILE_SERVING)
        evidence = f" (log: {diagnosis.evidence})" if diagnosis.evidence else ""
        self.died = ServerDied(diagnosis.annotate(f"{message}{evidence}"), error_class=diagnosis.error_class, hint=diagnosis.hint)
        _logger().error("%s", message)
        self.note(status="died", exit_code=code, error_class=diagnosis.error_class.value)
        return self.died

    def note(self, **server: Any) -> None:
        """Merge ``server`` into every sharing run's ``run_metadata.json`` ``server`` entry."""
        for recorder in self.recorders:
            recorder.data.setdefault("server", {}).update(server)
            recorder.write()

    def set_status(self, status: RunStatus) -> None:
        self.status = status
        for recorder in self.recorders:
            if recorder.status != status:
                recorder.set_status(status)

    @property
    def failed(self) -> bool:
        return self.ready.done() and (self.ready.cancelled() or self.ready.exception() is not None)


#: The servers of the job whose runs execute in this context (see :meth:`LocalServers.bound`).
_BOUND: ContextVar[LocalServers | None] = ContextVar("tracr_local_servers", default=None)


def _session_key(model: ModelSpec, location: RunLocation) -> str:
    if not isinstance(model, LocalServerModel):
        raise ValueError(f"{model.kind} models are not served locally")
    return f"{location.root.resolve()}|{location.job_id}|{serve_key(model)}"


class LocalServers:
    """A job's local servers: one per serve settings, started on first use, stopped when the last run leaves.

    ``start`` runs one server for a session (preflight, GPUs, start, health,
    serve until released, stop) and fills in ``session.ready``.
    """

    def __init__(self, start: Callable[[ServerSession], Coroutine[Any, Any, Any]]) -> None:
        self._start = start
        self._sessions: dict[str, ServerSession] = {}
        #: Announced runs that have not joined yet, per session key: a shared server
        #: stays up between them even when one run ends before the next begins.
        self._expected: dict[str, int] = {}

    @staticmethod
    def current() -> LocalServers | None:
        """The servers bound in this context, if a job bound its own."""
        return _BOUND.get()

    @contextmanager
    def bound(self) -> Iterator[LocalServers]:
        """Make these the servers that runs started inside use (they find them through :meth:`current`)."""
        token = _BOUND.set(self)
        try:
            yield self
        finally:
            _BOUND.reset(token)

    def expect(self, plans: list[RunPlan]) -> None:
        """Announce a job's runs, so runs with the same serve settings share one server.

        Without it runs still share a server while they overlap; with it the server
        also waits for announced runs that have not started yet.
        """
        for plan in plans:
            if plan.model.serves_locally:
                key = _session_key(plan.model, plan.location)
                self._expected[key] = self._expected.get(key, 0) + 1

    async def close(self) -> None:
        """End of the job: forget the announced runs and stop the servers kept only for them."""
        self._expected.clear()
        for key, session in list(self._sessions.items()):
            if session.users == 0:
                await self._close(key, session)

    async def _close(self, key: str, session: ServerSession) -> None:
        """Stop the session's server (or its start) and wait until it is down."""
        session.release.set()
        if self._sessions.get(key) is session:  # a failed session may have been replaced under its key
            del self._sessions[key]
        task = session.task
        if task is not None and not task.done():
            if not session.ready.done():
                task.cancel()
            await asyncio.shield(asyncio.wait({task}))
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved: failures were raised to the runs already
        if session.ready.done() and not session.ready.cancelled():
            session.ready.exception()

    def _join(self, key: str, model: LocalServerModel, location: RunLocation, share: bool) -> tuple[ServerSession, bool]:
        """The live session under ``key``, or a new one; counts the user in (and one announced run out)."""
        session = self._sessions.get(key)
        joined = session is not None and not session.failed and not session.release.is_set()
        if session is None or not joined:
            session = ServerSession(model=model, location=location)
            self._sessions[key] = session
        session.users += 1
        if share and self._expected.get(key):
            self._expected[key] -= 1
            if not self._expected[key]:
                del self._expected[key]
        return session, joined

    @asynccontextmanager
    async def serve(
        self,
        plan_or_spec: RunPlan | ModelSpec,
        location: RunLocation | None = None,
        *,
        recorder: RunRecorder | None = None,
        share: bool = True,
    ) -> AsyncIterator[LocalEndpoint]:
        """Yield a healthy local server's endpoint for the model; stop it when the last user leaves.

        ``plan_or_spec`` is a run plan (its location is used by default) or a model spec
        with an explicit ``location``. Raises :class:`ServerStartError` (class and hint in
        the message) when the server cannot be had.
        """
        model = plan_or_spec.model if isinstance(plan_or_spec, RunPlan) else plan_or_spec
        location = location or (plan_or_spec.location if isinstance(plan_or_spec, RunPlan) else None)
        if location is None:
            raise ValueError("serving a bare model spec needs a location")
        if not isinstance(model, LocalServerModel):
            raise ValueError(f"{model.kind} models are not served locally")
        key = _session_key(model, location) if share else f"{_session_key(model, location)}|{uuid.uuid4().hex}"
        session, joined = self._join(key, model, location, share)
        if recorder is not None:
            session.recorders.append(recorder)
            if session.status != RunStatus.QUEUED and recorder.status != session.status:
                recorder.set_status(session.status)
            if joined:
                recorder.data["server"] = {"shared_with_run": str(session.location.run_dir), "log": str(session.location.server_log)}
                recorder.write()
        if not joined:
            session.task = asyncio.create_task(self._start(session))
        try:
            task = session.task
            assert task is not None
            await asyncio.wait({session.ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if not session.ready.done():
                task.result()  # the flow ended before the server was ready: raise its error
                raise ServerStartError(f"local server for {model.model} stopped before becoming healthy")
            endpoint = session.ready.result()
            yield LocalEndpoint(endpoint.base_url, endpoint.served_model, endpoint.gpu_ids, joined, endpoint.log_path, endpoint.death)
        finally:
            session.users -= 1
            # The last user stops the server, unless announced runs of the job still need it
            # (their recorders stay attached, so every run's metadata ends with "stopped").
            if session.users == 0 and (session.failed or not self._expected.get(key)):
                await self._close(key, session)
