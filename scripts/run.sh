#!/usr/bin/env bash
# Starts the action server and the Rasa server, waits until both answer, then
# prints one ready banner. Ctrl-C (or either server dying) stops both. Both
# start through walletbot/server.py (the Rasa version check and walletbot's
# patches of Rasa). Server output goes to $LOG_DIR (default var/log), so the
# banner is not lost in start-up noise; a server that dies shows its last lines.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
.venv/bin/python -m walletbot.settings
# Once here, rather than the same refusal from both servers.
.venv/bin/python -m walletbot.rasa_compat.version
mkdir -p var
LOG_DIR=${LOG_DIR:-var/log}
mkdir -p "$LOG_DIR"
# Trackers of earlier versions move to channel-scoped ids (a no-op once done).
.venv/bin/python -m walletbot.rasa_compat.migrate >/dev/null
MODEL=${MODEL:-models/walletbot.tar.gz}

fail() { echo "error: $*" >&2; exit 1; }

[ -f "$MODEL" ] || fail "no model at $MODEL: run 'make run' (it trains one, about a minute) or 'make train'"
if [ "$MODEL" = "models/walletbot.tar.gz" ]; then
  newer=$(find config.yml domain.yml data -type f -newer "$MODEL" -print -quit 2>/dev/null || true)
  if [ -n "$newer" ]; then
    echo "warning: $MODEL is older than $newer; 'make run' retrains it first ('make train' alone)." >&2
  fi
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$RASA_PORT" "$ACTION_PORT"; do
  if port_busy "$port"; then
    fail "port $port is in use (another 'make run'?). Stop it (e.g. 'fuser -k $port/tcp'), or choose other ports: RASA_PORT=5105 ACTION_PORT=5155 ACTION_ENDPOINT_URL=http://127.0.0.1:5155/webhook make run"
  fi
done

pids=()
stop_all() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap 'stop_all; echo "walletbot: stopped"; exit 0' INT TERM
trap stop_all EXIT

echo "walletbot: starting the action server and the Rasa server (about 30 s; logs in $LOG_DIR/)"
.venv/bin/python -m walletbot.server run actions --actions actions --port "$ACTION_PORT" \
  >>"$LOG_DIR/actions.log" 2>&1 &
pids+=($!)
.venv/bin/python -m walletbot.server run \
  --model "$MODEL" \
  --interface 127.0.0.1 --port "$RASA_PORT" \
  --enable-api --auth-token "$RASA_AUTH_TOKEN" \
  --endpoints endpoints.yml --credentials credentials.yml \
  >>"$LOG_DIR/rasa.log" 2>&1 &
pids+=($!)

died() {
  for name in actions rasa; do
    echo "--- last lines of $LOG_DIR/$name.log ---" >&2
    tail -n 20 "$LOG_DIR/$name.log" >&2 || true
  done
  fail "$1"
}

BASE="http://127.0.0.1:$RASA_PORT"
ready() {
  .venv/bin/python - "$BASE/" "http://127.0.0.1:$ACTION_PORT/health" <<'PY'
import sys, urllib.request
try:
    for url in sys.argv[1:]:
        urllib.request.urlopen(url, timeout=2).close()
except Exception:
    sys.exit(1)
PY
}
for _ in $(seq 1 300); do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || died "a server stopped during start-up (see the log lines above)"
  done
  ready && break
  sleep 1
done
ready || died "the servers did not answer within 5 minutes"

cat <<BANNER

walletbot is ready ($WALLETBOT_ENV profile)
  chat page    $BASE/webhooks/web/chat        demo login: 张三 or 李四
  agent desk   $BASE/webhooks/desk/           agent1 or agent2, password dev-agent-password
  WeChat       $BASE/webhooks/wechat/webhook  token: $WECHAT_TOKEN (plaintext mode)
  REST         curl -s $BASE/webhooks/rest/webhook -d '{"sender": "zhangsan", "message": "提现一般几天到账"}'
  logs         $LOG_DIR/rasa.log, $LOG_DIR/actions.log (LOG_FORMAT=$LOG_FORMAT)
  metrics      http://$METRICS_HOST:$METRICS_PORT/metrics (Rasa), http://$METRICS_HOST:$ACTION_METRICS_PORT/metrics (actions)
Stop with Ctrl-C.
BANNER
wait -n "${pids[@]}" || true
died "a server stopped (see the log lines above)"
