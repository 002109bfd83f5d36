"""The stub's Files and Batches endpoints: an OpenAI-compatible Batch API that misbehaves on demand.

``POST /v1/files`` (multipart ``file``, ``purpose``) stores a JSONL of requests;
``POST /v1/batches`` starts a batch over it; ``GET /v1/batches/{id}`` reports it,
``POST /v1/batches/{id}/cancel`` cancels it, ``GET /v1/files/{id}/content`` serves
a file (inputs, results, errors). A batch stays ``in_progress`` for
``BatchScript.delay_s`` seconds after creation, then ends:

* ``completed``, with one result line per request (the stub's chat reply to its
  body) in ``output_file_id`` and, for requests whose ``custom_id`` contains one of
  ``fail_ids``, an error line (status 500) in ``error_file_id``;
* ``expired`` when ``expire`` is set: the first ``expire_after`` requests have
  results, the rest error lines with code ``batch_expired``;
* ``cancelled`` at once when cancelled before its end (no results).

With ``once``, failures and expiry apply to the first batch that ends only, so a
page sent again in a new batch gets its result.

``GET /_batches`` lists every batch created (ids and custom ids), so a test can
tell a collected batch from a resubmitted one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tracr.servers import openai_protocol as oai

__all__ = ["BatchScript", "batch_routes"]


class BatchScript(BaseModel):
    """How the stub's batches behave (see the module docstring)."""

    delay_s: float = Field(default=1.0, ge=0)
    fail_ids: list[str] = Field(default_factory=list)
    expire: bool = False
    expire_after: int = Field(default=0, ge=0)
    once: bool = False  # fail_ids and expire apply to the first batch only (a retry in a new batch succeeds)


class _Batches:
    def __init__(self, script: BatchScript, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.script = script
        self.answer = answer
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.ends: dict[str, float] = {}
        self.ended_one = False

    def add_file(self, data: bytes, purpose: str, name: str) -> dict[str, Any]:
        file_id = f"file-{uuid.uuid4().hex[:16]}"
        self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()), "filename": name, "purpose": purpose}

    def create(self, input_file_id: str, endpoint: str) -> dict[str, Any]:
        lines = [json.loads(line) for line in self.files[input_file_id].decode().splitlines() if line.strip()]
        batch_id = f"batch_{uuid.uuid4().hex[:16]}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": endpoint,
            "input_file_id": input_file_id,
            "completion_window": "24h",
            "status": "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "_requests": lines,
        }
        self.ends[batch_id] = time.monotonic() + self.script.delay_s
        return self.public(batch_id)

    def public(self, batch_id: str) -> dict[str, Any]:
        self._advance(batch_id)
        return {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")}

    def cancel(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        if batch["status"] == "in_progress":
            batch["status"] = "cancelled"
            batch["cancelled_at"] = int(time.time())
        return self.public(batch_id)

    def _advance(self, batch_id: str) -> None:
        batch = self.batches[batch_id]
        if batch["status"] != "in_progress" or time.monotonic() < self.ends[batch_id]:
            return
        results, errors = [], []
        faulty = not (self.script.once and self.ended_one)
        self.ended_one = True
        expire = self.script.expire and faulty
        for n, line in enumerate(batch["_requests"]):
            custom_id = line["custom_id"]
            if expire and n >= self.script.expire_after:
                errors.append(
                    _error_line(custom_id, 400, "batch_expired", "This request could not be executed before the completion window expired.")
                )
            elif faulty and any(part in custom_id for part in self.script.fail_ids):
                errors.append(_error_line(custom_id, 500, "server_error", "The server had an error processing this request (stub)."))
            else:
                body = self.answer(line["body"])
                results.append(
                    {
                        "id": f"batch_req_{uuid.uuid4().hex[:12]}",
                        "custom_id": custom_id,
                        "response": {"status_code": 200, "body": body},
                        "error": None,
                    }
                )
        batch["status"] = "expired" if expire else "completed"
        batch["request_counts"] = {"total": len(batch["_requests"]), "completed": len(results), "failed": len(errors)}
        if results:
            batch["output_file_id"] = self.add_file(_jsonl(results), "batch_output", "output.jsonl")["id"]
        if errors:
            batch["error_file_id"] = self.add_file(_jsonl(errors), "batch_output", "errors.jsonl")["id"]

    def listing(self) -> list[dict[str, Any]]:
        return [
            {"id": b["id"], "status": b["status"], "custom_ids": [line["custom_id"] for line in b["_requests"]]}
            for b in self.batches.values()
        ]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def _error_line(custom_id: str, status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "id": f"batch_req_{uuid.uuid4().hex[:12]}",
        "custom_id": custom_id,
        "response": {
            "status_code": status,
            "body": oai.error_body(message, "server_error" if status >= 500 else "invalid_request_error", code),
        },
        "error": {"code": code, "message": message},
    }


def batch_routes(
    script: BatchScript, answer: Callable[[dict[str, Any]], dict[str, Any]], auth_error: Callable[[Request], Response | None]
) -> list[Route]:
    """The Files and Batches routes; ``answer`` turns a chat request body into the stub's completion."""
    state = _Batches(script, answer)

    async def upload(request: Request) -> Response:
        if (denied := auth_error(request)) is not None:
            return denied
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return oai.error_response(400, "file: required", "invalid_request_error", None)
        data = await upload.read()
        return oai.json_response(state.add_file(data, str(form.get("purpose") or ""), upload.filename or "input.jsonl"))

    async def content(request: Request) -> Response:
        if (denied := auth_error(request)) is not None:
            return denied
        data = state.files.get(request.path_params["file_id"])
        if data is None:
            return oai.error_response(404, "No such file (stub)", "invalid_request_error", None)
        return Response(data, media_type="application/octet-stream")

    async def create(request: Request) -> Response:
        if (denied := auth_error(request)) is not None:
            return denied
        body = json.loads(await request.body())
        if body.get("input_file_id") not in state.files:
            return oai.error_response(400, "input_file_id: unknown file (stub)", "invalid_request_error", None)
        return oai.json_response(state.create(body["input_file_id"], body.get("endpoint", "/v1/chat/completions")))

    def _known(request: Request) -> str | None:
        batch_id = request.path_params["batch_id"]
        return batch_id if batch_id in state.batches else None

    async def retrieve(request: Request) -> Response:
        if (denied := auth_error(request)) is not None:
            return denied
        batch_id = _known(request)
        return (
            oai.json_response(state.public(batch_id))
            if batch_id
            else oai.error_response(404, "No such batch (stub)", "invalid_request_error", None)
        )

    async def cancel(request: Request) -> Response:
        if (denied := auth_error(request)) is not None:
            return denied
        batch_id = _known(request)
        return (
            oai.json_response(state.cancel(batch_id))
            if batch_id
            else oai.error_response(404, "No such batch (stub)", "invalid_request_error", None)
        )

    async def listing(request: Request) -> Response:
        return oai.json_response({"batches": state.listing()})

    return [
        Route("/v1/files", upload, methods=["POST"]),
        Route("/v1/files/{file_id}/content", content),
        Route("/v1/batches", create, methods=["POST"]),
        Route("/v1/batches/{batch_id}", retrieve),
        Route("/v1/batches/{batch_id}/cancel", cancel, methods=["POST"]),
        Route("/_batches", listing),
    ]
