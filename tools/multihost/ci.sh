#!/usr/bin/env bash
# The multi-host group (tests/multihost, docs/deployments.md section 7): PostgreSQL 15 from Debian, a Prefect
# server on it, workers in their own hostname/PID/mount namespaces. Installs what is missing, runs the group,
# and stops what it started (the harness stops PostgreSQL when it started it; this script removes nothing it
# did not install). Needs root (unshare, pg_ctlcluster). ~6-8 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v pg_ctlcluster >/dev/null || [ ! -d /usr/lib/postgresql/15 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
command -v unshare >/dev/null || { echo "unshare (util-linux) is needed" >&2; exit 2; }
# Debian's package creates and may start cluster 15/main; leave it as we found it.
was_online=$(pg_lsclusters --no-header 2>/dev/null | awk '$1=="15" && $2=="main" {print $4}')
[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
python -c "import asyncpg" 2>/dev/null || pip install -q -e ".[test]"
status=0
TRACR_MULTIHOST=1 python -m pytest -q -rA -m multihost tests/multihost "$@" || status=$?
now=$(pg_lsclusters --no-header 2>/dev/null | awk '$1=="15" && $2=="main" {print $4}')
if [ "$was_online" != "online" ] && [ "$now" = "online" ]; then pg_ctlcluster 15 main stop || true; fi
exit $status
