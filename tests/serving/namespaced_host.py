"""A stand-in worker that runs inside its own PID namespace and does what it is told on stdin.

Run as pid 2 of ``unshare -u -p -f -m --mount-proc tools/multihost/reaper.py``
(``tests/serving/test_pid_namespaces.py``), so two of them, doing the same steps,
give their servers the same pid. One command per line, one ``REPLY <json>`` line
back on stdout:

* ``start <key> <flow run id> self|gone``: start the stand-in vLLM, wait until it
  answers, record it (``tasks.serving.registry``) with this process as its owner
  (``self``) or an owner that has exited (``gone``: a killed flow whose server lived on);
* ``stop``: stop that server and remove its record, as a flow that ends does;
* ``sweep``: the sweep a starting server does; ``crash-hook <flow run id>``: the
  ``on_crashed``/``on_cancellation`` backstop;
* ``claim <digest>``: take (or be refused) a job claim (``tracr.run.claims``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tasks.serving.process import ServerHandle, ServerSpec, find_free_port, start_server, stop_server, wait_until_healthy
from tasks.serving.registry import ServerRecord, process_cmdline, remove_record, stop_servers_of_flow_run, sweep_stale_servers, write_record
from tracr.run.claims import try_claim


def _start(outputs: Path, key: str, flow_run_id: str, owner: str) -> tuple[ServerHandle, Path, dict[str, Any]]:
    gone = subprocess.Popen(["true"])  # spawned either way, so both hosts' pids stay in step
    gone.wait()
    port = find_free_port()
    vllm = shutil.which("vllm") or "vllm"
    command = [vllm, "serve", key, "--served-model-name", key, "--port", str(port)]
    handle = start_server(ServerSpec(command=command, served_model=key, port=port, log_path=outputs.parent / f"{key}-{port}.log"))
    asyncio.run(wait_until_healthy(handle))
    owner_pid = os.getpid() if owner == "self" else gone.pid
    record = ServerRecord(
        key=key,
        pid=handle.pid,
        pgid=handle.pid,
        port=port,
        command=command,
        owner_pid=owner_pid,
        owner_cmdline=(process_cmdline(owner_pid) or []) if owner == "self" else [],
        flow_run_id=flow_run_id,
    )
    path = write_record(outputs, record)
    return handle, path, {"pid": handle.pid, "port": port, "record": str(path), "owner_pid": owner_pid}


def main() -> int:
    outputs = Path(sys.argv[1])
    server: tuple[ServerHandle, Path] | None = None
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        reply: Any
        if words[0] == "start":
            handle, path, reply = _start(outputs, words[1], words[2], words[3])
            server = (handle, path)
        elif words[0] == "stop" and server is not None:
            stop_server(server[0], 5.0)
            remove_record(server[1])
            reply, server = {"stopped": True}, None
        elif words[0] == "sweep":
            reply = sweep_stale_servers(outputs, grace_s=5.0)
        elif words[0] == "crash-hook":
            reply = stop_servers_of_flow_run(outputs, words[1], grace_s=5.0)
        elif words[0] == "claim":
            acquired, holder = try_claim(outputs, words[1], {})
            reply = {"acquired": acquired, "holder": holder}
        else:
            reply = {"error": f"unknown command {line.strip()!r}"}
        print("REPLY " + json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
