#!/usr/bin/env bash
# The production profile on one machine, from Debian's packages, in the
# foreground: PostgreSQL (tracker store + wallet DB), Redis (lock store, WeChat
# de-duplication, socket.io fan-out), the action server, two Rasa replicas and
# nginx in front of them. Ctrl-C (or any of them dying) stops everything.
#
#   scripts/prod.sh [--env-file FILE]      # default FILE: .env
#
# Settings: FILE's KEY=VALUE lines win over the environment (as .env does for
# `make run`); config/prod/prod.env fills in the non-secret rest. Secrets are
# never defaulted: `.venv/bin/python scripts/prod/make_env.py` writes a file of
# generated ones for a local run. WALLETBOT_ENV is always `production`.
# Data lives under PROD_DATA_DIR (default var/prod): the PostgreSQL cluster
# (created on first start), Redis' working folder, nginx' files and logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf 'prod.sh: %s\n' "$*"; }
die() { printf 'prod.sh: %s\n' "$*" >&2; exit "${2:-1}"; }

ENV_FILE=${PROD_ENV_FILE:-.env}
while [ $# -gt 0 ]; do
  case "$1" in
    --env-file) [ $# -ge 2 ] || die "--env-file needs a file" 2; ENV_FILE=$2; shift 2 ;;
    --env-file=*) ENV_FILE=${1#*=}; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" 2 ;;
  esac
done

# KEY=VALUE lines, no shell evaluation (passwords may hold $ or quotes);
# $2 = override: whether the file's values win over the environment.
load_env() {
  local file=$1 override=$2 line key value
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    if [ "$override" = yes ] || [ -z "${!key+x}" ]; then export "$key=$value"; fi
  done < "$file"
}

if [ -f "$ENV_FILE" ]; then
  load_env "$ENV_FILE" yes
elif [ "$ENV_FILE" != .env ]; then
  die "env file $ENV_FILE not found" 2
fi
load_env config/prod/prod.env no
export WALLETBOT_ENV=production
export ACTION_ENDPOINT_URL=${ACTION_ENDPOINT_URL:-http://127.0.0.1:$ACTION_PORT/webhook}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# Rasa's dependencies print pages of DeprecationWarnings at start-up.
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}
PY=$ROOT/.venv/bin/python
# Rasa through walletbot's entry point: the Rasa version check, then
# walletbot's patches of Rasa (walletbot/server.py).
RASA=("$PY" -m walletbot.server)
DATA=${PROD_DATA_DIR:-var/prod}
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd)

# --- configuration checks -----------------------------------------------------
"$PY" -m walletbot.settings || die "fix the settings above (see README, \"Production\")"
# Before PostgreSQL and Redis start, not when the replicas refuse to (status 3,
# as for missing binaries: the installation, not the settings).
"$PY" -m walletbot.rasa_compat.version || exit
[ -n "${REDIS_PASSWORD:-}" ] || die "set REDIS_PASSWORD (letters, digits, . _ ~ -)"
[[ $REDIS_PASSWORD =~ ^[A-Za-z0-9._~-]+$ ]] ||
  die "REDIS_PASSWORD may hold only letters, digits and . _ ~ - (it is put into REDIS_URL)"
case "$REDIS_HOST" in 127.0.0.1|localhost) ;; *) die "REDIS_HOST must be 127.0.0.1: this script runs Redis itself" ;; esac
export REDIS_URL="redis://:$REDIS_PASSWORD@$REDIS_HOST:$REDIS_PORT/$REDIS_DB"
PG_PORT=$("$PY" scripts/prod/bootstrap.py check-local) || exit 2
[ -f "$MODEL" ] || die "no model at $MODEL: run \`make train\` first"
[ -f "$DESK_AGENTS_FILE" ] || die "DESK_AGENTS_FILE $DESK_AGENTS_FILE does not exist"

# --- binaries -------------------------------------------------------------------
PG_BIN=""
if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
  PG_BIN=$(dirname "$(readlink -f "$(command -v initdb)")")
fi
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/postgres" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] ||
  die "PostgreSQL server binaries not found: apt-get install postgresql" 3
REDIS_SERVER=$(command -v redis-server || ls /usr/bin/redis-server 2>/dev/null || true)
[ -n "$REDIS_SERVER" ] || die "redis-server not found: apt-get install redis-server" 3
NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)
[ -n "$NGINX" ] || die "nginx not found: apt-get install nginx" 3

# PostgreSQL refuses to run as root: then it runs as the `postgres` user.
AS_PG=()
if [ "$(id -u)" = 0 ]; then
  id -u postgres >/dev/null 2>&1 ||
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
  AS_PG=(setpriv "--reuid=$(id -u postgres)" "--regid=$(id -g postgres)" --init-groups)
fi

# --- process management ---------------------------------------------------------
APP_PIDS=()   # nginx, replicas, action server: stopped first
DB_PIDS=()    # Redis, PostgreSQL: stopped last
declare -A NAMES=()
stopping=no

# start NAME APP|DB COMMAND...: runs COMMAND in the background, its output
# prefixed with [NAME] (stdin comes from the caller's redirection).
start() {
  local name=$1 kind=$2; shift 2
  # `<&0`: a background job would otherwise read /dev/null instead of our stdin.
  # The prefixing sed ignores Ctrl-C (like the background jobs): it must outlive
  # the servers to show their shutdown; it ends when they close its pipe.
  "$@" <&0 > >(trap '' INT; exec sed -u "s/^/[$name] /") 2>&1 &
  local pid=$!
  NAMES[$pid]=$name
  if [ "$kind" = DB ]; then DB_PIDS+=("$pid"); else APP_PIDS+=("$pid"); fi
}

alive() { kill -0 "$1" 2>/dev/null; }

wait_gone() {  # PIDS...: waits up to 20 s, then kills what is left
  local pid i
  for i in $(seq 1 200); do
    local any=no
    for pid in "$@"; do alive "$pid" && any=yes; done
    [ $any = no ] && return 0
    sleep 0.1
  done
  for pid in "$@"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
  return 0
}

stop_all() {
  local status=$?
  trap - INT TERM EXIT
  [ $stopping = yes ] && return
  stopping=yes
  [ $((${#APP_PIDS[@]} + ${#DB_PIDS[@]})) -gt 0 ] || exit "$status"
  say "stopping"
  local pid
  for pid in "${APP_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait_gone "${APP_PIDS[@]}"
  for pid in "${DB_PIDS[@]}"; do
    # PostgreSQL: SIGINT = fast shutdown; Redis: SIGTERM (nothing to save).
    if [ "${NAMES[$pid]}" = postgres ]; then kill -INT "$pid" 2>/dev/null || true
    else kill -TERM "$pid" 2>/dev/null || true; fi
  done
  wait_gone "${DB_PIDS[@]}"
  wait 2>/dev/null || true
  say "stopped"
  exit "$status"
}
trap 'exit 130' INT
trap 'exit 143' TERM
trap stop_all EXIT

all_alive() {
  local pid
  for pid in "${APP_PIDS[@]}" "${DB_PIDS[@]}"; do
    alive "$pid" || { say "${NAMES[$pid]} exited early" >&2; return 1; }
  done
}

# until CHECK-COMMAND succeeds, with every process alive, for at most $1 seconds
wait_until() {
  local seconds=$1; shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    all_alive || return 1
    [ $SECONDS -lt $deadline ] || { say "timed out waiting for: $*" >&2; return 1; }
    sleep 1
  done
}

# --- PostgreSQL -----------------------------------------------------------------
PGDATA=$DATA/pg
PGSOCK=$DATA/pg-socket
mkdir -p "$PGDATA" "$PGSOCK"
chmod 700 "$PGDATA" "$PGSOCK"
[ ${#AS_PG[@]} -eq 0 ] || chown postgres:postgres "$PGDATA" "$PGSOCK"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  say "creating the PostgreSQL cluster in $PGDATA"
  # Local socket: trust, but the socket folder is 0700 (this user or root only).
  # TCP: passwords (scram-sha-256) for the roles bootstrap.py creates.
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >"$DATA/initdb.log" 2>&1 ||
    { cat "$DATA/initdb.log" >&2; die "initdb failed"; }
fi
start postgres DB "${AS_PG[@]}" "$PG_BIN/postgres" -D "$PGDATA" -p "$PG_PORT" \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories="$PGSOCK" \
  -c unix_socket_permissions=0700 -c password_encryption=scram-sha-256

# --- Redis ----------------------------------------------------------------------
# No persistence: locks live for one turn, WeChat de-duplication keys for
# minutes, socket.io fan-out is publish/subscribe. The password comes in on
# stdin, so it never shows in the process list.
mkdir -p "$DATA/redis"
start redis DB "$REDIS_SERVER" - <<EOF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
requirepass $REDIS_PASSWORD
dir $DATA/redis
save ""
appendonly no
daemonize no
logfile ""
EOF

pg_ready() { "$PG_BIN/pg_isready" -q -h "$PGSOCK" -p "$PG_PORT" -U postgres -d postgres; }
redis_ready() { "$PY" -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"]).ping()'; }
wait_until 60 pg_ready || exit 1
wait_until 30 redis_ready || exit 1
say "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on $REDIS_HOST:$REDIS_PORT"

# Roles, databases and tables (idempotent), before any replica starts.
"$PY" scripts/prod/bootstrap.py setup \
  --admin-url "postgresql+psycopg2://postgres@/postgres?host=$PGSOCK&port=$PG_PORT" ||
  die "database bootstrap failed"

# --- action server and the Rasa replicas ----------------------------------------
start actions APP "${RASA[@]}" run actions --actions actions --port "$ACTION_PORT" </dev/null
replica=0
# Each replica has a metrics port of its own (METRICS_PORT, METRICS_PORT_2); the
# action server reads ACTION_METRICS_PORT. All on METRICS_HOST (127.0.0.1): nginx
# never proxies them.
metrics_ports=("${METRICS_PORT:-}" "${METRICS_PORT_2:-}")
for port in "$RASA_PORT" "$RASA_PORT_2"; do
  replica=$((replica + 1))
  start "rasa-$replica" APP env "METRICS_PORT=${metrics_ports[$((replica - 1))]}" \
    "${RASA[@]}" run --model "$MODEL" \
    --interface 127.0.0.1 --port "$port" \
    --enable-api --auth-token "$RASA_AUTH_TOKEN" \
    --endpoints config/prod/endpoints.yml --credentials credentials.yml </dev/null
done

# --- nginx ----------------------------------------------------------------------
NGX=$DATA/nginx
mkdir -p "$NGX/tmp"
user_directive=""
if [ "$(id -u)" = 0 ]; then
  # Workers drop root; they need only the temp folder.
  worker_user=www-data
  id -u "$worker_user" >/dev/null 2>&1 || worker_user=nobody
  user_directive="user $worker_user $(id -gn "$worker_user");"
  chown -R "$worker_user" "$NGX/tmp"
fi
render() {  # TEMPLATE: prints it with the ${NAME}s below filled in
  local text
  text=$(<"$1")
  text=${text//'${RASA_1}'/127.0.0.1:$RASA_PORT}
  text=${text//'${RASA_2}'/127.0.0.1:$RASA_PORT_2}
  text=${text//'${NGINX_LISTEN}'/$NGINX_HOST:$NGINX_PORT}
  text=${text//'${NGINX_ACCESS_LOG}'/$NGX/access.log}
  text=${text//'${PREFIX}'/$NGX}
  text=${text//'${USER_DIRECTIVE}'/$user_directive}
  printf '%s\n' "$text"
}
render config/prod/nginx/walletbot.conf.template >"$NGX/walletbot.conf"
render config/prod/nginx/nginx.local.conf.template >"$NGX/nginx.conf"
"$NGINX" -t -q -p "$NGX/" -c "$NGX/nginx.conf" -e stderr || die "nginx configuration test failed"
start nginx APP "$NGINX" -p "$NGX/" -c "$NGX/nginx.conf" -e stderr </dev/null

# --- readiness ------------------------------------------------------------------
http_ok() {  # URLS...: all answer 2xx
  "$PY" -c 'import sys, urllib.request
for url in sys.argv[1:]:
    urllib.request.urlopen(url, timeout=3).close()' "$@"
}
say "waiting for the replicas to load the model (about a minute)"
wait_until "${PROD_START_TIMEOUT:-300}" http_ok \
  "http://127.0.0.1:$ACTION_PORT/health" \
  "http://127.0.0.1:$RASA_PORT/" "http://127.0.0.1:$RASA_PORT_2/" \
  "http://$NGINX_HOST:$NGINX_PORT/nginx-health" "http://$NGINX_HOST:$NGINX_PORT/webhooks/rest/" || exit 1

PUBLIC="http://$NGINX_HOST:$NGINX_PORT"
cat <<EOF
prod.sh: ready (production profile). Ctrl-C stops everything.
  public (nginx)   $PUBLIC/
    REST           $PUBLIC/webhooks/rest/webhook
    web chat       $PUBLIC/webhooks/web/chat
    agent desk     $PUBLIC/webhooks/desk/
    WeChat         $PUBLIC/webhooks/wechat/webhook
    (nothing else: anything other than these and /nginx-health gets 404)
  rasa-1           http://127.0.0.1:$RASA_PORT/
  rasa-2           http://127.0.0.1:$RASA_PORT_2/
    HTTP API       http://127.0.0.1:$RASA_PORT/status?token=... (RASA_AUTH_TOKEN; this machine only)
  action server    http://127.0.0.1:$ACTION_PORT/health
  metrics          http://$METRICS_HOST:$METRICS_PORT/metrics (rasa-1), :$METRICS_PORT_2 (rasa-2), :$ACTION_METRICS_PORT (actions)
  PostgreSQL       127.0.0.1:$PG_PORT (tracker store and wallet DB; data in $PGDATA)
  Redis            $REDIS_HOST:$REDIS_PORT
  nginx log        $NGX/access.log
EOF

status=0
wait -n -p died "${APP_PIDS[@]}" "${DB_PIDS[@]}" || status=$?
say "${NAMES[$died]:-a process} exited (status $status); stopping everything" >&2
exit 1
