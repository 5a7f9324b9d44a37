# Sourced by the Makefile's recipes: loads a git-ignored .env, then fills in
# the development defaults of config/dev.env for anything still unset. Values
# already in the environment always win.
if [ -f .env ]; then
  set -a; . ./.env; set +a
fi
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; esac
  key=${line%%=*}
  if [ -z "${!key+x}" ]; then
    export "$key=${line#*=}"
  fi
done < config/dev.env
# TensorFlow's C++ start-up chatter hides real log lines.
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
