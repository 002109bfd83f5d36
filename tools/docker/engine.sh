#!/usr/bin/env bash
# A Docker engine for the `docker` test group, on a machine without systemd.
#   tools/docker/engine.sh start    # start dockerd in the background unless one answers; wait until ready
#   tools/docker/engine.sh stop     # stop the dockerd this script started (by its pid); containerd exits with it
#   tools/docker/engine.sh status   # exit 0 when an engine answers
# Needs root and Debian's docker.io (`apt-get install -y docker.io`). State: $TRACR_DOCKERD_DIR
# (default /var/run/tracr-dockerd): pid file and dockerd.log. An engine that answers but was not
# started here is used and never stopped.
set -euo pipefail
STATE_DIR=${TRACR_DOCKERD_DIR:-/var/run/tracr-dockerd}
PID_FILE=$STATE_DIR/dockerd.pid
LOG=$STATE_DIR/dockerd.log
DOCKERD=${DOCKERD:-$(command -v dockerd || echo /usr/sbin/dockerd)}

answers() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }
our_pid() { [[ -s $PID_FILE ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null && cat "$PID_FILE"; }

case "${1:-status}" in
start)
  if answers; then echo "engine already answers ($(docker info --format '{{.ServerVersion}}'))"; exit 0; fi
  if pid=$(our_pid); then echo "dockerd pid $pid is running but does not answer yet"; else
    [[ -x $DOCKERD ]] || { echo "dockerd not found: apt-get install -y docker.io" >&2; exit 1; }
    mkdir -p "$STATE_DIR"
    # setsid: its own session, so a Ctrl-C in the calling shell does not stop it
    setsid "$DOCKERD" >>"$LOG" 2>&1 < /dev/null &
    echo $! > "$PID_FILE"
    pid=$!
  fi
  for _ in $(seq 1 120); do
    if answers; then echo "engine ready: dockerd pid $pid, $(docker info --format '{{.ServerVersion}} {{.Driver}}')"; exit 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "dockerd exited; last log lines:" >&2; tail -20 "$LOG" >&2; rm -f "$PID_FILE"; exit 1; }
    sleep 0.5
  done
  echo "dockerd did not answer within 60 s; log: $LOG" >&2; exit 1 ;;
stop)
  if ! pid=$(our_pid); then rm -f "$PID_FILE"; echo "no dockerd started by this script is running"; exit 0; fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$PID_FILE"; echo "dockerd $pid stopped"; exit 0; }; sleep 0.5; done
  echo "dockerd $pid still running after 30 s; sending SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null || true; rm -f "$PID_FILE" ;;
status)
  if answers; then echo "engine answers: $(docker info --format '{{.ServerVersion}} {{.Driver}} runtimes={{range $k, $v := .Runtimes}}{{$k}} {{end}}')"$( pid=$(our_pid) && echo ", dockerd pid $pid (ours)"); exit 0; fi
  echo "no engine answers"; exit 1 ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
