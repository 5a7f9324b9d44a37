#!/usr/bin/env bash
# The system packages the bot and its tests need, in one place: `make deps`
# (and so `make test` and .ci/run) installs the missing ones with apt as root,
# or stops before any test, naming the exact command to run.
#   scripts/deps.sh           install what is missing (root + apt), else explain and fail
#   scripts/deps.sh --check   only list what is missing (exit 1 if anything is)
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have make || missing+=(make)
have git || missing+=(git)
# PostgreSQL server binaries: the wallet-DB, tracker-store and production tests
# start throwaway servers.
if ! have initdb && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
# runuser starts PostgreSQL as an unprivileged user when the tests run as root.
have runuser || missing+=(util-linux)
# Browser tests drive Debian's chromium; without the CJK font Chinese renders as boxes.
have chromium || [ -x /usr/bin/chromium ] || missing+=(chromium)
fc-list 2>/dev/null | grep -qi wqy || missing+=(fonts-wqy-microhei)
# Replicas share the rate limit, WeChat de-duplication and socket.io fan-out through Redis.
have redis-server || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
# The production-profile tests put nginx in front of two Rasa replicas.
have nginx || [ -x /usr/sbin/nginx ] || missing+=(nginx)

if [ ${#missing[@]} -eq 0 ]; then
  [ "${1:-}" = "--check" ] || echo "deps: every system package is installed"
  exit 0
fi
line="apt-get install -y ${missing[*]}"
if [ "${1:-}" = "--check" ]; then
  echo "missing system packages: ${missing[*]}"
  exit 1
fi
if [ "$(id -u)" -eq 0 ] && have apt-get; then
  echo "deps: installing ${missing[*]} (about a minute)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
cat >&2 <<MSG
error: the tests need system packages that are not installed: ${missing[*]}
Install them, then run make test again:

    sudo $line

(Without them a third of the system would go untested. To run only the unit tests,
which may skip what is missing, use: make test-fast)
MSG
exit 1
