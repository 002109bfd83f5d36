"""PID 1 of one stand-in host: set the hostname, run one command, reap every orphan.

Run inside ``unshare -u -p -f -m --mount-proc`` (own hostname, PID space and
/proc; the filesystem and loopback network are shared, like hosts on NFS):

    unshare -u -p -f -m --mount-proc python tools/multihost/reaper.py --hostname node-a -- prefect worker start ...

SIGTERM/SIGINT are passed to the command. When the command exits the host stays
up: the reaper keeps collecting orphans (so a killed worker's leftovers can be
seen, as on a real machine) until none is left, or until it gets SIGTERM itself
after the command is gone; then whatever is left in the namespace is killed (as
when a machine powers off) and it exits with the command's status. ``--info FILE`` records the host's pid as seen
from outside (for tests that look at its process table through ``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--info")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    socket.sethostname(args.hostname)
    child = os.fork()
    if child == 0:
        os.setsid()  # the command's own session: signals to it do not reach the reaper
        os.execvp(command[0], command)
    if args.info:
        with open(args.info + ".tmp", "w", encoding="utf-8") as fh:
            json.dump({"hostname": args.hostname, "command_pid_inside": child, "started_at": time.time()}, fh)
        os.replace(args.info + ".tmp", args.info)

    command_done = False

    def forward(signum: int, _frame: object) -> None:
        if command_done:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    while True:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child:
            status = os.waitstatus_to_exitcode(raw)
            command_done = True
    # Nothing is left (or the host was powered off: SIGKILL to every process of this PID namespace).
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
