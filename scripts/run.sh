#!/usr/bin/env bash
# Starts the action server and the Rasa server in the foreground.
# Ctrl-C (or either server dying) stops both. Both start through
# walletbot/server.py (the Rasa version check and walletbot's patches of Rasa).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
.venv/bin/python -m walletbot.settings
# Once here, rather than the same refusal from both servers.
.venv/bin/python -m walletbot.rasa_compat.version
mkdir -p var
# Trackers of earlier versions move to channel-scoped ids (a no-op once done).
.venv/bin/python -m walletbot.rasa_compat.migrate >/dev/null
MODEL=${MODEL:-models/walletbot.tar.gz}

pids=()
stop_all() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

.venv/bin/python -m walletbot.server run actions --actions actions --port "$ACTION_PORT" &
pids+=($!)
.venv/bin/python -m walletbot.server run \
  --model "$MODEL" \
  --interface 127.0.0.1 --port "$RASA_PORT" \
  --enable-api --auth-token "$RASA_AUTH_TOKEN" \
  --endpoints endpoints.yml --credentials credentials.yml &
pids+=($!)

echo "walletbot: Rasa on http://127.0.0.1:$RASA_PORT, actions on http://127.0.0.1:$ACTION_PORT (Ctrl-C stops both)"
wait -n "${pids[@]}"
